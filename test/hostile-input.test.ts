// Damaged or foreign stores are bad input (exit 3) naming the file, never "unexpected failure (please report it)".
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parquetSink, sqliteSink } from 'inrun';
import { describe, expect, it } from 'vitest';
import { main } from '../packages/cli/src/cli/program.js';
import { bulkStore, syntheticRun } from './store-fixtures.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'inrun-hostile-input-'));

async function cli(args: string[]) {
  let err = '';
  const code = await main(args, { out: () => undefined, err: (s) => (err += s) });
  return { code, err };
}

async function sqliteStore(damage: (db: Database.Database) => void) {
  const dir = tmp();
  const path = join(dir, 's.sqlite');
  await syntheticRun([sqliteSink(path)], { n: 30, steps: 4, batch: 10 });
  const db = new Database(path);
  damage(db);
  db.close();
  return { dir, path };
}

async function parquetStore(damage: (runDir: string) => void) {
  const dir = tmp();
  const path = join(dir, 'p');
  await syntheticRun([parquetSink(path)], { n: 30, steps: 4, batch: 10 });
  damage(join(path, 'run-synthetic'));
  return { dir, path };
}

const truncate = (file: string) => writeFileSync(file, readFileSync(file).subarray(0, Math.floor(statSync(file).size / 2)));

describe('damaged stores exit 3 naming the file', () => {
  it('target_losses that is not JSON', async () => {
    const { dir, path } = await sqliteStore((db) => db.prepare("UPDATE steps SET target_losses = '{\"val\": ' WHERE step = 2").run());
    const r = await cli(['report', path, '--out', join(dir, 'r.html')]);
    expect(r.err).not.toContain('unexpected failure');
    expect([r.code, r.err.includes(path)]).toEqual([3, true]);
  });

  it('an example_key of 2^40 (no terabyte array is attempted)', async () => {
    const { dir, path } = await sqliteStore((db) => {
      db.prepare('UPDATE examples SET example_key = ? WHERE example_key = 29').run(2 ** 40);
      db.prepare('UPDATE scores SET example_key = ? WHERE example_key = 29').run(2 ** 40);
    });
    const r = await cli(['report', path, '--out', join(dir, 'r.html')]);
    expect(r.err).not.toContain('unexpected failure');
    expect([r.code, r.err.includes(path)]).toEqual([3, true]);
  });

  it('a truncated Parquet segment (report, query, curate, merge)', async () => {
    const { dir, path } = await parquetStore((run) => {
      for (const sub of ['steps', 'examples']) truncate(join(run, sub, readdirSync(join(run, sub))[0]!));
    });
    for (const args of [
      ['report', path, '--out', join(dir, 'r.html')],
      ['query', path, 'SELECT * FROM step_rows'],
      ['curate', path, '--drop', 'lowest:3', '--out', join(dir, 'm.csv')],
      ['merge', path, '--out', join(dir, 'ds')],
    ]) {
      const r = await cli(args);
      expect(r.err, args[0]).not.toContain('unexpected failure');
      expect([args[0], r.code]).toEqual([args[0], 3]);
      expect(r.err, args[0]).toContain(path);
    }
  });

  it('a foreign Parquet file where a totals snapshot belongs', async () => {
    const { dir, path } = await parquetStore((run) => {
      const totals = join(run, 'totals');
      const [snapshot] = readdirSync(totals);
      // A Parquet file of someone else's (the examples file: valid Parquet, other columns).
      writeFileSync(join(totals, snapshot!), readFileSync(join(run, 'examples', readdirSync(join(run, 'examples'))[0]!)));
    });
    for (const args of [['report', path, '--out', join(dir, 'r.html')], ['query', path, 'SELECT COUNT(*) FROM scores']]) {
      const r = await cli(args);
      expect(r.err).not.toContain('unexpected failure');
      expect([r.code, r.err.includes(join(path, 'run-synthetic', 'totals'))]).toEqual([3, true]);
    }
  });

  it('a SQLite input damaged in the middle while merge streams it', async () => {
    const dir = tmp();
    const path = join(dir, 'big.sqlite');
    await bulkStore(path, 3000);
    // Damage pages past the schema: the store opens, the merge fails part-way through a table.
    const fd = openSync(path, 'r+');
    const size = statSync(path).size;
    for (let at = Math.floor(size * 0.4); at < size * 0.6; at += 4096) writeSync(fd, Buffer.alloc(200, 0xa5), 0, 200, at + 100);
    closeSync(fd);
    const r = await cli(['merge', path, '--out', join(dir, 'ds')]);
    expect(r.err).not.toContain('unexpected failure');
    expect(r.code).toBe(3);
    expect(r.err).toContain(path);
  });
});
