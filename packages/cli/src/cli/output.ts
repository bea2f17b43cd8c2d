// Query results on stdout as an aligned table, CSV or JSON, streamed row by row where the format allows.
import { formatNumber } from '../report/html.js';
import type { Row } from '../read/reader.js';
import { csvField, text } from '../read/text.js';

/** Output formats of `inrun query`. */
export type Format = 'table' | 'csv' | 'json';

/** Rows a table shows (it needs them all to align columns); csv and json stream any number. */
export const TABLE_ROWS = 1000;

const shown = (v: unknown): string => (typeof v === 'number' && !Number.isInteger(v) ? formatNumber(v) : text(v).replace(/\s+/g, ' '));

/** Writes `rows` to `write` in `format`; returns the number of rows. */
export async function writeRows(rows: AsyncIterable<Row> | Iterable<Row>, format: Format, write: (s: string) => void): Promise<number> {
  let n = 0;
  let headers: string[] | null = null;
  const table: string[][] = [];
  let more = false;
  for await (const row of rows) {
    headers ??= Object.keys(row);
    if (format === 'csv') {
      if (n === 0) write(`${headers.map(csvField).join(',')}\n`);
      write(`${headers.map((h) => csvField(row[h])).join(',')}\n`);
    } else if (format === 'json') {
      write(`${n === 0 ? '[\n' : ',\n'}${JSON.stringify(row, (_, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}`);
    } else if (table.length < TABLE_ROWS) table.push(headers.map((h) => shown(row[h])));
    else more = true;
    n++;
  }
  if (format === 'json') write(n === 0 ? '[]\n' : '\n]\n');
  if (format === 'table') {
    const head = headers ?? [];
    const width = head.map((h, i) => Math.min(60, Math.max(h.length, ...table.map((r) => r[i]!.length))));
    const line = (cells: string[]) => cells.map((c, i) => (c.length > width[i]! ? `${c.slice(0, width[i]! - 1)}…` : c.padEnd(width[i]!))).join('  ').trimEnd();
    if (head.length > 0) write(`${line(head)}\n${line(width.map((w) => '-'.repeat(w)))}\n`);
    for (const r of table) write(`${line(r)}\n`);
    write(`(${n} row${n === 1 ? '' : 's'}${more ? `; the first ${TABLE_ROWS} shown, --format csv for all` : ''})\n`);
  }
  return n;
}
