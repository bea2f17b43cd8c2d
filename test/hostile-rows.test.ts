// Offline jobs against broken row files and checkpoints: bad input (exit 3) naming the file, and the answers single-process tracin() gives.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../packages/cli/src/cli/program.js';
import { tracinCase } from './jobs-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'inrun-hostile-rows-'));
let checkpoints = '';
let trainFile = '';
let queriesFile = '';

beforeAll(async () => {
  await tf.setBackend('cpu');
  ({ checkpoints, trainFile, queriesFile } = await tracinCase(root, 12, 2));
});

async function cli(args: string[]) {
  let err = '';
  const code = await main(args, { out: () => undefined, err: (s) => (err += s) });
  return { code, err };
}

const lines = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: unknown; xs: number[]; ys: number[] });
const writeLines = (path: string, rows: unknown[]) => writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

describe('broken row files and checkpoints exit 3 naming the file', () => {
  const tracinArgs = (o: { train?: string; queries?: string; checkpoints?: string; shards?: number }) => [
    'tracin', '--checkpoints', o.checkpoints ?? checkpoints, '--train', o.train ?? trainFile, '--queries', o.queries ?? queriesFile,
    '--out', join(root, `out-${Math.random().toString(16).slice(2)}`), '--shards', String(o.shards ?? 1),
  ];

  it('an empty row file', async () => {
    const empty = join(root, 'empty.jsonl');
    writeFileSync(empty, '');
    for (const o of [{ train: empty }, { queries: empty }]) {
      const r = await cli(tracinArgs(o));
      expect(r.err).not.toContain('unexpected failure');
      expect([r.code, r.err.includes(empty)]).toEqual([3, true]);
    }
  });

  it('a missing --checkpoints folder and a truncated checkpoint', async () => {
    const missing = join(root, 'no-such-folder');
    let r = await cli(tracinArgs({ checkpoints: missing }));
    expect(r.err).not.toContain('unexpected failure');
    expect([r.code, r.err.includes(missing)]).toEqual([3, true]);
    const cut = join(root, 'cut-ckpt');
    cpSync(checkpoints, cut, { recursive: true });
    for (const f of readdirSync(cut, { recursive: true, encoding: 'utf8' })) {
      const p = join(cut, f);
      if (statSync(p).isFile() && f.endsWith('.bin')) writeFileSync(p, readFileSync(p).subarray(0, 10));
    }
    r = await cli(tracinArgs({ checkpoints: cut }));
    expect(r.err).not.toContain('unexpected failure');
    expect([r.code, r.err.includes(cut)]).toEqual([3, true]);
  });

  it('a row file whose xs are wider than the model input', async () => {
    const wide = join(root, 'wide.jsonl');
    writeLines(wide, lines(trainFile).map((r) => ({ ...r, xs: [...r.xs, 0, 0] })));
    const r = await cli(tracinArgs({ train: wide }));
    expect(r.err).not.toContain('unexpected failure');
    expect([r.code, r.err.includes(wide)]).toEqual([3, true]);
  });
});

/** A copy of the training row file (as `name` under the test folder) whose row `row` has 1e999 (Infinity) as its first xs. */
function withInfinityAt(name: string, row: number): string {
  const path = join(root, name);
  const text = readFileSync(trainFile, 'utf8').split('\n');
  text[row] = text[row]!.replace(/"xs":\[([^,\]]+)/, '"xs":[1e999');
  writeFileSync(path, text.join('\n'));
  return path;
}

describe('inrun trak refuses what inrun tracin refuses, naming the file', () => {
  const trakArgs = (train: string, out = join(root, `trak-${Math.random().toString(16).slice(2)}`)) => ['trak', '--checkpoints', checkpoints, '--train', train, '--queries', queriesFile, '--out', out, '--dim', '4'];

  it('a row whose xs hold 1e999 (Infinity): exit 3 naming the row and the file, and no output folder', async () => {
    const inf = withInfinityAt('inf-trak.jsonl', 4);
    const out = join(root, 'trak-inf');
    const r = await cli(trakArgs(inf, out));
    expect([r.code, r.err.includes('train.xs[4]'), r.err.includes(inf)]).toEqual([3, true, true]);
    expect(existsSync(out)).toBe(false);
  });

  it('xs wider than the model input: exit 3 naming the file, not a raw tf.js error', async () => {
    const wide = join(root, 'wide-trak.jsonl');
    writeLines(wide, lines(trainFile).map((r) => ({ ...r, xs: [...r.xs, 0] })));
    const r = await cli(trakArgs(wide));
    expect(r.err).not.toContain('unexpected failure');
    expect([r.code, r.err.includes(wide)]).toEqual([3, true]);
  });

  it('labels of the wrong width (one column for a 3-class output): exit 3 naming the file, in tracin as in trak (they broadcast into wrong scores)', async () => {
    const narrow = join(root, 'narrow-ys.jsonl');
    writeLines(narrow, lines(trainFile).map((r) => ({ ...r, ys: [1] })));
    for (const args of [trakArgs(narrow), ['tracin', '--checkpoints', checkpoints, '--train', narrow, '--queries', queriesFile, '--out', join(root, 'narrow-out')]]) {
      const r = await cli(args);
      expect([args[0], r.code, r.err.includes(narrow), r.err.includes('train.ys')]).toEqual([args[0], 3, true, true]);
    }
  });

  it('a file given as --checkpoints: exit 3 naming it, not an unexpected failure', async () => {
    const r = await cli(['trak', '--checkpoints', trainFile, '--train', trainFile, '--queries', queriesFile, '--out', join(root, 'trak-file-ckpt')]);
    expect(r.err).not.toContain('unexpected failure');
    expect([r.code, r.err.includes(trainFile)]).toEqual([3, true]);
  });

  it('an empty row file, a duplicate id, a missing checkpoints folder: exit 3; --out that is a file: exit 2 before any work', async () => {
    const empty = join(root, 'empty-trak.jsonl');
    writeFileSync(empty, '');
    const dup = join(root, 'dup-trak.jsonl');
    const rows = lines(trainFile);
    writeLines(dup, [...rows, rows[0]]);
    for (const [args, code, named] of [
      [trakArgs(empty), 3, empty],
      [trakArgs(dup), 3, dup],
      [['trak', '--checkpoints', join(root, 'nowhere'), '--train', trainFile, '--queries', queriesFile, '--out', join(root, 'trak-nowhere')], 3, join(root, 'nowhere')],
      [trakArgs(trainFile, queriesFile), 2, queriesFile],
    ] as [string[], number, string][]) {
      const before = readFileSync(queriesFile, 'utf8');
      const r = await cli(args);
      expect(r.err).not.toContain('unexpected failure');
      expect([named, r.code, r.err.includes(named)]).toEqual([named, code, true]);
      expect(readFileSync(queriesFile, 'utf8')).toBe(before);
    }
  });
});

describe('inrun tracin gives the answers of single-process tracin()', () => {
  it('a row whose xs hold 1e999 (Infinity) is refused (exit 3) naming the row, not scored into NaN', async () => {
    const inf = withInfinityAt('inf.jsonl', 3);
    const out = join(root, 'inf-out');
    const r = await cli(['tracin', '--checkpoints', checkpoints, '--train', inf, '--queries', queriesFile, '--out', out]);
    expect(r.code).toBe(3);
    expect(r.err).toContain('train.xs[3]');
    // The refused run leaves no empty run=<id>/ folder behind, nor the --out folder it created.
    expect(existsSync(out)).toBe(false);
  });

  it('a refused inrun untrac (an Infinity in a source row) exits 3 and leaves no empty run=<id>/ folder', async () => {
    const inf = withInfinityAt('inf-untrac.jsonl', 2);
    const out = join(root, 'inf-untrac-out');
    const r = await cli(['untrac', '--model', checkpoints, '--sources', `a=${inf}`, '--targets', `val=${queriesFile}`, '--out', out, '--max-steps', '1']);
    expect(r.err).not.toContain('unexpected failure');
    expect([r.code, r.err.includes(inf)]).toEqual([3, true]);
    expect(existsSync(out)).toBe(false);
  });

  it('the same id in two shards is refused as one shard (and tracin()) refuses it', async () => {
    const dup = join(root, 'dup.jsonl');
    const rows = lines(trainFile);
    rows[10] = { ...rows[10]!, id: rows[1]!.id };
    writeLines(dup, rows);
    const r = await cli(['tracin', '--checkpoints', checkpoints, '--train', dup, '--queries', queriesFile, '--out', join(root, 'dup-out'), '--shards', '2']);
    expect(r.code).toBe(3);
    expect(r.err).toContain('train.ids[10]');
    // Ids of distinct types stay distinct: 1 and "1" are two ids.
    const mixed = join(root, 'mixed.jsonl');
    writeLines(mixed, rows.map((row, i) => ({ ...row, id: i < 6 ? i : String(i - 6) })));
    expect((await cli(['tracin', '--checkpoints', checkpoints, '--train', mixed, '--queries', queriesFile, '--out', join(root, 'mixed-out'), '--shards', '2'])).code).toBe(0);
  });
});
