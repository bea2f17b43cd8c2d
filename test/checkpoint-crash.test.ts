import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { attach, InrunError, loadCheckpoint, readCheckpointInfo, sqliteSink, type Scores, type Sink } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachTo, BATCH, data, model, ROWS, train } from './fixtures/training.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const PER_EPOCH = ROWS / BATCH;
const tmp = () => mkdtempSync(join(tmpdir(), 'inrun-ckpt-'));
const options = (sinks: Sink[]) => ({ runId: 'r', seed: 3, targets: { val: data().val }, sinks, flushEvery: 2, totalsEvery: 0 }) as const;
const stepName = (step: number) => `step-${String(step).padStart(9, '0')}`;

/** Checkpoints A and B: after epochs 3 and 4 (each example seen several times, so float sums differ by order). */
const A = 4 * PER_EPOCH - 1;
const B = 5 * PER_EPOCH - 1;
const EPOCHS = 6;

/** Six epochs with checkpoints A and B, left without close(): a crashed run. */
async function crashedRun(dir: string): Promise<void> {
  const run = attach(model(), options([sqliteSink(join(dir, 'db.sqlite'))]));
  const { x, y, ids } = data();
  await run.fit(x, y, {
    ids, epochs: EPOCHS, batchSize: BATCH, verbose: 0,
    callbacks: { onEpochEnd: async (e) => void ((e === 3 || e === 4) && (await run.checkpoint(join(dir, 'ckpt')))) },
  });
  await run.flush();
}

async function uninterrupted(epochs: number): Promise<Scores> {
  const run = attach(model(), options([]));
  const { x, y, ids } = data();
  await run.fit(x, y, { ids, epochs, batchSize: BATCH, verbose: 0 });
  return run.close();
}

function expectSame(actual: Scores, expected: Scores): void {
  for (const name of Object.keys(expected.columns)) {
    expected.ids.forEach((id, i) => expect(actual.columns[name]![actual.ids.indexOf(id)]).toBe(expected.columns[name]![i]!));
  }
}

/** Resumes from `<dir>/ckpt` (its latest), trains to `epochs` checkpointing after each epoch, closes. */
async function resumeAndFinish(dir: string, epochs: number): Promise<Scores> {
  const run = attach(await loadCheckpoint(join(dir, 'ckpt')), options([sqliteSink(join(dir, 'db.sqlite'))]));
  const at = await run.resume(join(dir, 'ckpt'));
  const { x, y, ids } = data();
  await run.fit(x, y, { ids, epochs, initialEpoch: at.epoch! + 1, batchSize: BATCH, verbose: 0, callbacks: { onEpochEnd: async () => void (await run.checkpoint(join(dir, 'ckpt'))) } });
  return run.close();
}

describe('crash windows inside run.checkpoint', () => {
  it('a real SIGKILL inside run.checkpoint (totals written, model not yet saved): resuming from the previous checkpoint is bit for bit', async () => {
    const dir = tmp();
    // The 4th checkpoint (after epoch 3) dies between the sinks' snapshot and the model's save.
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/checkpoint-kill-child.ts', dir, '4'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
    expect(signal).toBe('SIGKILL');
    expect(out.trim().split('\n')).toEqual([0, 1, 2].map((e) => `checkpoint ${(e + 1) * PER_EPOCH - 1}`));
    const resumed = attachTo(await loadCheckpoint(join(dir, 'ckpt')), dir);
    const at = await resumed.resume(join(dir, 'ckpt'));
    expect(at).toEqual({ step: 3 * PER_EPOCH - 1, epoch: 2 });
    await train(resumed, at.epoch! + 1, dir);
    const after = await resumed.close();
    const clean = tmp();
    const reference = attachTo(model(), clean);
    await train(reference, 0, clean);
    expectSame(after, await reference.close());
    expect(readdirSync(join(dir, 'ckpt')).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('killed after the sinks wrote the totals of checkpoint B but before B was saved: resuming from A is bit for bit', async () => {
    const dir = tmp();
    await crashedRun(dir);
    // The state such a crash leaves: SQLite's newest totals are B's, the model folder B never appeared.
    rmSync(join(dir, 'ckpt', stepName(B)), { recursive: true });
    writeFileSync(join(dir, 'ckpt', 'latest'), stepName(A));
    expectSame(await resumeAndFinish(dir, EPOCHS), await uninterrupted(EPOCHS));
  });

  it("killed after checkpoint B's folder was renamed into place but before 'latest' moved: the resumed run checkpoints B again", async () => {
    const dir = tmp();
    await crashedRun(dir);
    writeFileSync(join(dir, 'ckpt', 'latest'), stepName(A));
    // A process killed inside the `latest` update itself leaves its temp file: the next update clears it.
    writeFileSync(join(dir, 'ckpt', '.latest.tmp-999999'), stepName(B));
    expectSame(await resumeAndFinish(dir, EPOCHS), await uninterrupted(EPOCHS));
    expect(readFileSync(join(dir, 'ckpt', 'latest'), 'utf8')).toBe(stepName(EPOCHS * PER_EPOCH - 1));
    expect(readdirSync(join(dir, 'ckpt')).filter((f) => f.includes('tmp') || f.includes('old'))).toEqual([]);
  });

  it('an incomplete folder for the same step (no inrun.json) is replaced', async () => {
    const dir = tmp();
    await crashedRun(dir);
    const b = join(dir, 'ckpt', stepName(B));
    rmSync(join(b, 'inrun.json'));
    writeFileSync(join(dir, 'ckpt', 'latest'), stepName(A));
    await resumeAndFinish(dir, EPOCHS);
    expect(readCheckpointInfo(b).step).toBe(B);
  });

  it("a folder of another run at the same step is never overwritten", async () => {
    const dir = tmp();
    await crashedRun(dir);
    const b = join(dir, 'ckpt', stepName(B));
    const info = JSON.parse(readFileSync(join(b, 'inrun.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(b, 'inrun.json'), JSON.stringify({ ...info, runId: 'someone-else' }));
    writeFileSync(join(dir, 'ckpt', 'latest'), stepName(A));
    const error = await resumeAndFinish(dir, EPOCHS).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(InrunError);
    expect((error as Error).message).toMatch(/someone-else/);
  });

  it("checkpoints: { everySteps } at an epoch's last step record that epoch, and the documented resume recipe is bit for bit", async () => {
    for (const checkpoints of [{ everySteps: PER_EPOCH }, { everySteps: PER_EPOCH, everyEpochs: 1 }]) {
      const dir = tmp();
      const run = attach(model(), { ...options([sqliteSink(join(dir, 'db.sqlite'))]), checkpoints: { dir: join(dir, 'ckpt'), ...checkpoints } });
      const { x, y, ids } = data();
      await run.fit(x, y, { ids, epochs: 2, batchSize: BATCH, verbose: 0 });
      await run.flush();
      expect(readCheckpointInfo(join(dir, 'ckpt', stepName(PER_EPOCH - 1))).epoch).toBe(0);
      expect(readCheckpointInfo(join(dir, 'ckpt')).epoch).toBe(1);
      writeFileSync(join(dir, 'ckpt', 'latest'), stepName(PER_EPOCH - 1));
      const resumed = attach(await loadCheckpoint(join(dir, 'ckpt')), options([sqliteSink(join(dir, 'db.sqlite'))]));
      const at = await resumed.resume(join(dir, 'ckpt'));
      expect(at.epoch).toBe(0);
      await resumed.fit(x, y, { ids, epochs: 3, initialEpoch: at.epoch! + 1, batchSize: BATCH, verbose: 0 });
      expect(resumed.stats().steps).toBe(3 * PER_EPOCH);
      expectSame(await resumed.close(), await uninterrupted(3));
    }
  });
});

describe('corrupt checkpoints', () => {
  async function checkpointed(): Promise<string> {
    const dir = tmp();
    const run = attach(model(), options([]));
    const { x, y, ids } = data();
    await run.fit(x, y, { ids, epochs: 1, batchSize: BATCH, verbose: 0 });
    await run.checkpoint(join(dir, 'ckpt'));
    await run.close();
    return join(dir, 'ckpt', stepName(PER_EPOCH - 1));
  }

  const variants: Record<string, { file: string; spoil: (folder: string) => void }> = {
    'truncated weights': { file: 'weights.bin', spoil: (f) => truncateSync(join(f, 'weights.bin'), 40) },
    'missing weights': { file: 'weights.bin', spoil: (f) => rmSync(join(f, 'weights.bin')) },
    'missing inrun.json': { file: 'inrun.json', spoil: (f) => rmSync(join(f, 'inrun.json')) },
    'garbled inrun.json': { file: 'inrun.json', spoil: (f) => writeFileSync(join(f, 'inrun.json'), '{"runId": "r", "step": ') },
    'inrun.json of the wrong form': { file: 'inrun.json', spoil: (f) => writeFileSync(join(f, 'inrun.json'), '[1, 2]') },
    'garbled model.json': { file: 'model.json', spoil: (f) => writeFileSync(join(f, 'model.json'), 'not json') },
    'weights of another shape': {
      file: 'model.json',
      spoil: (f) => {
        const json = JSON.parse(readFileSync(join(f, 'model.json'), 'utf8')) as { modelTopology: { model_config?: unknown; config?: unknown } };
        const text = JSON.stringify(json).replace('"units":8', '"units":5');
        writeFileSync(join(f, 'model.json'), text);
      },
    },
    'missing optimizer state': {
      file: 'model.json',
      spoil: (f) => {
        const json = JSON.parse(readFileSync(join(f, 'model.json'), 'utf8')) as { weightSpecs: { name: string }[] };
        const model = json.weightSpecs.filter((w) => !/\/(m|v)$|iter/.test(w.name));
        expect(model.length).toBeLessThan(json.weightSpecs.length);
        json.weightSpecs = model;
        writeFileSync(join(f, 'model.json'), JSON.stringify(json));
      },
    },
  };

  for (const [name, { file, spoil }] of Object.entries(variants)) {
    it(`${name}: an InrunError (bad_checkpoint) naming ${file}`, async () => {
      const folder = await checkpointed();
      spoil(folder);
      const error = await (async () => {
        readCheckpointInfo(folder);
        return loadCheckpoint(folder);
      })().then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(InrunError);
      expect((error as InrunError).code).toBe('bad_checkpoint');
      expect((error as Error).message).toContain(join(folder, file));
    });
  }

  it("a 'latest' naming a folder that is gone is a bad_checkpoint naming it", async () => {
    const folder = await checkpointed();
    rmSync(folder, { recursive: true });
    expect(existsSync(folder)).toBe(false);
    const error = await loadCheckpoint(join(folder, '..')).then(() => null, (e: unknown) => e);
    expect((error as InrunError).code).toBe('bad_checkpoint');
    expect((error as Error).message).toContain(folder);
  });
});
