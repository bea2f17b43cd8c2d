// `inrun trak`: over JSON-lines rows, in process (one shard or several), queries.parquet equals trak() on the same rows, and the stored run (Parquet folder, SQLite file) holds each row's summed score for inrun report; bad flags exit 2.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { tracin, trak } from 'inrun';
import { openStore, writeReport } from '@inrun/cli';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../packages/cli/src/cli/program.js';
import { readLines, tracinCase } from './jobs-helpers.js';
import { spearman } from '../eval/metrics.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const silent = { out: () => undefined, err: () => undefined };

type Row = { id: string | number; xs: number[]; ys: number[]; source?: string };
const back = (path: string) => JSON.parse(`[${readLines(path).join(',')}]`) as Row[];
const tensors = (r: readonly Row[]) => ({ xs: tf.tensor2d(r.map((x) => x.xs)), ys: tf.tensor2d(r.map((x) => x.ys)), ids: r.map((x) => x.id) });

/** queries.parquet as (query, kind, rank, train id) and scores. */
async function listsOf(out: string): Promise<Record<string, unknown>[]> {
  return (await parquetReadObjects({ file: await asyncBufferFromFile(join(out, 'queries.parquet')) })) as Record<string, unknown>[];
}

/** The stored trak:queries column of a store (Parquet folder or SQLite file) by example id, with source and label. */
async function storedScores(path: string): Promise<Map<string, { value: number; source: unknown; label: unknown; method: unknown; target: unknown }>> {
  const store = await openStore(path);
  try {
    const rows = await store.all("SELECT example_id, source, label, method, target, value FROM example_scores WHERE column_name = 'trak:queries'");
    return new Map(rows.map((r) => [String(r['example_id']), { value: Number(r['value']), source: r['source'], label: r['label'], method: r['method'], target: r['target'] }]));
  } finally {
    await store.close();
  }
}

/** Per training row, the sum of a row-major (rows x queries) matrix's row. */
const rowSums = (m: Float32Array, q: number) => Array.from({ length: m.length / q }, (_, r) => m.subarray(r * q, (r + 1) * q).reduce((s, v) => s + v, 0));

describe('inrun trak', () => {
  let dir: string;
  let c: Awaited<ReturnType<typeof tracinCase>>;
  let train: string;
  let rows: Row[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'inrun-trak-cli-'));
    c = await tracinCase(dir, 16, 3);
    // Sources travel from the row file to the stored examples.
    rows = back(c.trainFile).map((r, i) => ({ ...r, source: i % 2 === 0 ? 'even' : 'odd' }));
    train = join(dir, 'train-sources.jsonl');
    writeFileSync(train, rows.map((r) => JSON.stringify(r)).join('\n'));
  });

  it('writes the top-k lists of trak() as queries.parquet and stores each row\'s summed score; two --checkpoints folders ensemble two runs; --shards 3 gives the same', async () => {
    const q = back(c.queriesFile);
    // The same run twice exercises --checkpoints a b (and the default seed 0, which tf.js alone would leave unseeded).
    const truth = await trak({ runs: [c.checkpoints, c.checkpoints], train: tensors(rows), queries: tensors(q), k: 3, dim: 4, lambda: 0.01, matrix: true });
    const sums = rowSums(truth.matrix!, q.length);
    const wanted = truth.queries.flatMap((query) =>
      (['proponent', 'opponent'] as const).flatMap((kind) =>
        (kind === 'proponent' ? query.proponents : query.opponents).map((p, r) => ({ query_id: String(query.id), kind, rank: r + 1, train_id: String(p.id), score: p.score })),
      ),
    );
    expect(wanted.length).toBeGreaterThan(0);
    for (const shards of ['1', '3']) {
      const out = join(dir, `trak-out-${shards}`);
      const sqlite = join(dir, `trak-${shards}.sqlite`);
      const printed: string[] = [];
      const args = ['trak', '--checkpoints', c.checkpoints, c.checkpoints, '--train', train, '--queries', c.queriesFile, '--out', out, '--k', '3', '--dim', '4', '--lambda', '0.01', '--shards', shards, '--sqlite', sqlite];
      expect(await main(args, { out: (s: string) => printed.push(s), err: (e: string) => process.stderr.write(e) })).toBe(0);
      expect(printed.join('')).toMatch(new RegExp(`3 queries, 16 training rows\\) from 2 run\\(s\\), 4 checkpoint\\(s\\), ${shards} part\\(s\\)`));
      const file = await listsOf(out);
      expect(file.map((r) => [r['query_id'], r['kind'], r['rank'], r['train_id']]), shards).toEqual(wanted.map((r) => [r.query_id, r.kind, r.rank, r.train_id]));
      file.forEach((r, i) => expect(r['score'] as number).toBeCloseTo(wanted[i]!.score, 6));
      // The stored run: one row per training example, its value the sum of its scores over the queries.
      for (const store of [out, sqlite]) {
        const stored = await storedScores(store);
        expect(stored.size, store).toBe(16);
        rows.forEach((r, i) => {
          const s = stored.get(String(r.id))!;
          expect(s.value, `${store} ${String(r.id)}`).toBeCloseTo(sums[i]!, 4);
          expect([s.source, s.method, s.target]).toEqual([r.source, 'trak', 'queries']);
          // The label is the argmax of the one-hot ys.
          expect(String(s.label)).toBe(String(r.ys.indexOf(Math.max(...r.ys))));
        });
      }
      // A second write to the same folder is refused (exit 2: a bad option), not overwritten.
      expect(await main(args, silent)).toBe(2);
    }
    expect(sums.some((s) => Math.abs(s) > 1e-3)).toBe(true);
  });

  it('inrun report on the output folder shows the trak column, and its sign agrees with TracIn on the same data', async () => {
    const out = join(dir, 'trak-report');
    // The defaults (dim, lambda, margin): what users run.
    expect(await main(['trak', '--checkpoints', c.checkpoints, '--train', train, '--queries', c.queriesFile, '--out', out], silent)).toBe(0);
    const html = join(dir, 'trak-report.html');
    const r = await writeReport(out, { out: html });
    const page = readFileSync(html, 'utf8');
    expect(page).toContain('trak:queries');
    expect(page).toContain('TRAK (after the run');
    expect(r.bytes).toBeGreaterThan(0);
    expect(await main(['report', out, '--out', join(dir, 'cli-report.html')], silent)).toBe(0);
    // Positive = the example lowers the queries' loss, as TracIn's scores: the per-row sums rank alike.
    const stored = await storedScores(out);
    const q = back(c.queriesFile);
    const t = await tracin({ checkpoints: c.checkpoints, train: tensors(rows), queries: tensors(q), matrix: true, selfInfluence: false });
    const tracinSums = rowSums(t.matrix!, q.length);
    const rho = spearman(rows.map((row) => stored.get(String(row.id))!.value), tracinSums);
    expect(rho).toBeGreaterThan(0.5);
  });

  it('refuses bad flag values with exit code 2', async () => {
    for (const flag of [['--dim', '0'], ['--lambda', '-1'], ['--k', 'x'], ['--output', 'logit'], ['--seed', '1.5'], ['--shards', '0'], ['--timeout', '0'], ['--run-id', '../x']]) {
      expect(await main(['trak', '--checkpoints', 'nowhere', '--train', 'a.jsonl', '--queries', 'b.jsonl', '--out', 'never', ...flag], silent), flag.join(' ')).toBe(2);
    }
  });
});
