import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import Database from 'better-sqlite3';
import { attach, InrunError, parquetSink, sqliteSink, useFastEmbeddingGradient, type Sink } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const tmp = () => mkdtempSync(join(tmpdir(), 'inrun-newcomer-'));

function tiny() {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, activation: 'softmax', inputShape: [3] })] });
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  return { model, x: tf.randomNormal([4, 3], 0, 1, 'float32', 1), y: tf.oneHot(tf.tensor1d([0, 1, 0, 1], 'int32'), 2) };
}

async function trainOnce(sinks: Sink[], runId: string, labels: (string | number)[] = [0, 1, 0, 1]) {
  const { model, x, y } = tiny();
  const run = attach(model, { sinks, runId, examples: [0, 1, 2, 3].map((id) => ({ id, source: id < 2 ? 'web' : 'books', label: labels[id]! })) });
  await run.fit(x, y, { epochs: 1, batchSize: 2 });
  return run.close();
}

function embeddingModel() {
  const model = tf.sequential({ layers: [tf.layers.embedding({ inputDim: 10, outputDim: 3, inputLength: 4 }), tf.layers.flatten(), tf.layers.dense({ units: 2, activation: 'softmax' })] });
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  return model;
}

describe('as a newcomer', () => {
  it('the store has a latest_run view: per-source sums of the latest run stay right after a second run', async () => {
    const path = join(tmp(), 'runs.db');
    const first = await trainOnce([sqliteSink(path)], 'first');
    const second = await trainOnce([sqliteSink(path)], 'second');
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT run_id FROM latest_run').get()).toEqual({ run_id: 'second' });
    const sums = db
      .prepare("SELECT source, SUM(value) AS v FROM example_scores WHERE run_id = (SELECT run_id FROM latest_run) AND column_name = 'tracin_self' GROUP BY source ORDER BY source")
      .all() as { source: string; v: number }[];
    db.close();
    const col = second.columns['tracin_self']!;
    expect(sums.map((s) => s.source)).toEqual(['books', 'web']);
    expect(sums[0]!.v).toBeCloseTo(col[2]! + col[3]!, 5);
    expect(sums[1]!.v).toBeCloseTo(col[0]! + col[1]!, 5);
    expect(first.ids).toHaveLength(4);
  });

  it('whole-number labels are stored as integers, others as given', async () => {
    const path = join(tmp(), 'runs.db');
    await trainOnce([sqliteSink(path)], 'labels', [0, 1, 'spam', 2.5]);
    const db = new Database(path, { readonly: true });
    const rows = db.prepare('SELECT example_id, label, typeof(label) AS t FROM examples ORDER BY example_key').all();
    db.close();
    expect(rows).toEqual([
      { example_id: 0, label: 0, t: 'integer' },
      { example_id: 1, label: 1, t: 'integer' },
      { example_id: 2, label: 'spam', t: 'text' },
      { example_id: 3, label: 2.5, t: 'real' },
    ]);
  });

  it('a reused runId is caught before the first step, with one "inrun:" prefix; resume with it still works', async () => {
    for (const sinkIn of [(d: string) => sqliteSink(join(d, 'runs.db')), (d: string) => parquetSink(join(d, 'pq'))]) {
      const dir = tmp();
      await trainOnce([sinkIn(dir)], 'same');
      const { model, x, y } = tiny();
      let steps = 0;
      const run = attach(model, { sinks: [sinkIn(dir)], runId: 'same' });
      const error = await run.fit(x, y, { epochs: 1, batchSize: 2, callbacks: { onBatchEnd: () => void steps++ } }).then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(InrunError);
      expect((error as InrunError).field).toBe('runId');
      expect((error as Error).message.match(/inrun:/g)).toHaveLength(1);
      expect((error as Error).message).toMatch(/already stored/);
      expect(steps).toBe(0);
      await run.close();
      const resumed = attach(tiny().model, { sinks: [sinkIn(dir)], runId: 'same' });
      await resumed.resume({ afterStep: 1 });
      await resumed.fit(x, y, { epochs: 1, batchSize: 2 });
      expect((await resumed.close()).ids).toHaveLength(4);
    }
  });

  it('an Embedding model on wasm without useFastEmbeddingGradient() is refused at attach, saying what to call; on cpu a warning says it', async () => {
    await tf.setBackend('wasm');
    try {
      const error = (() => {
        try {
          attach(embeddingModel());
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(InrunError);
      expect((error as Error).message).toMatch(/useFastEmbeddingGradient\(\)/);
      const restore = useFastEmbeddingGradient();
      const run = attach(embeddingModel());
      await run.close();
      restore();
    } finally {
      await tf.setBackend('cpu');
    }
    const warnings: string[] = [];
    const on = (w: Error) => warnings.push(w.message);
    process.on('warning', on);
    const run = attach(embeddingModel());
    await new Promise((r) => setImmediate(r));
    process.off('warning', on);
    await run.close();
    expect(warnings.some((w) => w.includes('useFastEmbeddingGradient()'))).toBe(true);
  });

  it('ships the Apache-2.0 LICENSE its package.json names, and the README says ESM only and shows examples/describe', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { license: string };
    expect(pkg.license).toBe('Apache-2.0');
    const license = readFileSync('LICENSE', 'utf8');
    expect(license).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    expect(license).toMatch(/END OF TERMS AND CONDITIONS/);
    const readme = readFileSync('README.md', 'utf8');
    const quickStart = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## How it attaches'));
    expect(quickStart).toMatch(/examples: /);
    expect(quickStart).toMatch(/run\.describe\(/);
    expect(quickStart).toMatch(/latest_run/);
    expect(quickStart).toMatch(/ES module only/);
  });

  it('examples/live-monitoring.ts --keep-alive keeps serving metrics after training, until Ctrl-C', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const p = (server.address() as { port: number }).port;
        server.close(() => resolve(p));
      });
    });
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/live-monitoring.ts', '--port', String(port), '--epochs', '1', '--limit', '1064', '--keep-alive'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TSX_TSCONFIG_PATH: 'tsconfig.json' },
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => line.includes('still serving') && resolve());
      void exited.then((code) => reject(new Error(`exited early with ${code}`)));
    });
    // Well after training: the exporter still answers.
    await new Promise((r) => setTimeout(r, 1500));
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(body).toMatch(/^inrun_steps/m);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });
});

