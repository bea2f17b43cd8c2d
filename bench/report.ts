import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { quietNodeBanner } from 'inrun/internal';

// Every bench script imports this module: tf.js' node-backend banner is noise in inrun's own benches.
quietNodeBanner();

/** Replaces (or appends) the section `id` of a markdown file, between `<!-- id -->` markers. */
export function writeSection(file: string, id: string, markdown: string, header = '# Benchmarks\n\nWritten by `npm run bench`. Each section says how it was measured.\n'): void {
  const start = `<!-- ${id} -->`;
  const end = `<!-- /${id} -->`;
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const doc = existsSync(file) ? readFileSync(file, 'utf8') : header;
  const at = doc.indexOf(start);
  const next = at >= 0 ? doc.slice(0, at) + block + doc.slice(doc.indexOf(end, at) + end.length) : `${doc.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
}

/** Where and with what a benchmark ran. */
export function machine(): string {
  return `${new Date().toISOString().slice(0, 10)}; ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores); Node ${process.version}; tf.js ${tf.version_core}`;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
