// `inrun trak`: over JSON-lines rows, in process, queries.parquet equals trak() on the same rows; bad flags exit 2.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { trak } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../packages/cli/src/cli/program.js';
import { readLines, tracinCase } from './jobs-helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const silent = { out: () => undefined, err: () => undefined };

describe('inrun trak', () => {
  it('writes the top-k lists of trak() as queries.parquet; two --checkpoints folders ensemble two runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'inrun-trak-cli-'));
    const { checkpoints, trainFile, queriesFile } = await tracinCase(dir, 16, 3);
    const back = (path: string) => JSON.parse(`[${readLines(path).join(',')}]`) as { id: string | number; xs: number[]; ys: number[] }[];
    const [t, q] = [back(trainFile), back(queriesFile)];
    const rows = (r: typeof t) => ({ xs: tf.tensor2d(r.map((x) => x.xs)), ys: tf.tensor2d(r.map((x) => x.ys)), ids: r.map((x) => x.id) });
    // The same run twice exercises --checkpoints a b (and the default seed 0, which tf.js alone would leave unseeded).
    const truth = await trak({ runs: [checkpoints, checkpoints], train: rows(t), queries: rows(q), k: 3, dim: 4, lambda: 0.01 });
    const out = join(dir, 'trak-out');
    const printed: string[] = [];
    const args = ['trak', '--checkpoints', checkpoints, checkpoints, '--train', trainFile, '--queries', queriesFile, '--out', out, '--k', '3', '--dim', '4', '--lambda', '0.01'];
    expect(await main(args, { out: (s: string) => printed.push(s), err: (e: string) => process.stderr.write(e) })).toBe(0);
    expect(printed.join('')).toMatch(/3 queries, 16 training rows\) from 2 run\(s\), 4 checkpoint\(s\)/);
    const file = (await parquetReadObjects({ file: await asyncBufferFromFile(join(out, 'queries.parquet')) })) as Record<string, unknown>[];
    const wanted = truth.queries.flatMap((query) =>
      (['proponent', 'opponent'] as const).flatMap((kind) =>
        (kind === 'proponent' ? query.proponents : query.opponents).map((p, r) => ({ query_id: String(query.id), kind, rank: r + 1, train_id: String(p.id), score: p.score })),
      ),
    );
    expect(wanted.length).toBeGreaterThan(0);
    expect(file.map((r) => [r['query_id'], r['kind'], r['rank'], r['train_id']])).toEqual(wanted.map((r) => [r.query_id, r.kind, r.rank, r.train_id]));
    file.forEach((r, i) => expect(r['score'] as number).toBeCloseTo(wanted[i]!.score, 6));
    // A second write to the same folder is refused (exit 2: a bad option), not overwritten.
    expect(await main(args, silent)).toBe(2);
  });

  it('refuses bad flag values with exit code 2', async () => {
    for (const flag of [['--dim', '0'], ['--lambda', '-1'], ['--k', 'x'], ['--output', 'logit'], ['--seed', '1.5']]) {
      expect(await main(['trak', '--checkpoints', 'nowhere', '--train', 'a.jsonl', '--queries', 'b.jsonl', '--out', 'never', ...flag], silent), flag.join(' ')).toBe(2);
    }
  });
});
