// The example rows the report's tables show: their stored details, scored words, and the text with those words marked.
import { type Cell, escapeHtml, formatNumber, raw } from './html.js';
import type { StoredColumn, StoredRun } from '../read/stored-run.js';
import { groupName } from './scan.js';
import { text } from '../read/text.js';
import type { StoreReader } from '../read/reader.js';

/** One example as the tables show it. */
export interface Detail {
  id: unknown;
  source: unknown;
  label: unknown;
  text: string | null;
  values: Map<number, number>;
  tokens: { word: string; value: number }[];
}

export async function details(store: StoreReader, run: StoredRun, keys: readonly number[], tokenColumn: StoredColumn | undefined): Promise<Map<number, Detail>> {
  const out = new Map<number, Detail>();
  if (keys.length === 0) return out;
  const inList = [...new Set(keys)].map(Number).join(', ');
  for (const r of await store.all(`SELECT example_key, example_id, source, label, text FROM examples WHERE run_id = ? AND example_key IN (${inList})`, [run.id])) {
    out.set(Number(r['example_key']), { id: r['example_id'], source: r['source'], label: r['label'], text: (r['text'] as string | null) ?? null, values: new Map(), tokens: [] });
  }
  for (const r of await store.all(`SELECT example_key, column_id, value FROM scores WHERE run_id = ? AND example_key IN (${inList})`, [run.id])) {
    out.get(Number(r['example_key']))?.values.set(Number(r['column_id']), Number(r['value']));
  }
  if (tokenColumn !== undefined) {
    for (const r of await store.all(`SELECT example_key, word, token, value FROM token_scores WHERE run_id = ? AND column_id = ? AND example_key IN (${inList}) ORDER BY example_key, rank`, [run.id, tokenColumn.id])) {
      out.get(Number(r['example_key']))?.tokens.push({ word: r['word'] === null ? `#${text(r['token'])}` : text(r['word']), value: Number(r['value']) });
    }
  }
  return out;
}

/** The text with its scored words marked by sign, every piece escaped; clipped to 300 characters. */
export function highlight(text: string, tokens: readonly { word: string; value: number }[]): string {
  const clipped = text.length > 300 ? `${text.slice(0, 299)}…` : text;
  const sign = new Map(tokens.map((t) => [t.word.toLowerCase(), t.value]));
  if (sign.size === 0) return escapeHtml(clipped);
  return clipped
    .split(/([\p{L}\p{N}_']+)/u)
    .map((piece) => {
      const v = sign.get(piece.toLowerCase());
      return v === undefined ? escapeHtml(piece) : `<mark class="${markClass(v)}">${escapeHtml(piece)}</mark>`;
    })
    .join('');
}

/** A scored word's mark: a score of exactly 0 neither helped nor hurt, so it is neutral, not green. */
export function markClass(v: number): 'pos' | 'neg' | 'zero' {
  return v > 0 ? 'pos' : v < 0 ? 'neg' : 'zero';
}


/** A stored value as a table cell (objects as their text). */
export const cellOf = (v: unknown): Cell => (typeof v === 'number' || typeof v === 'string' || v === null || v === undefined ? v : text(v));

/** A word among the top words of more than this share of the examples is corpus-wide (the, is, url): not shown. */
export const COMMON_WORD_SHARE = 0.05;
/** ...and of at least this many examples (a small store has no corpus-wide words). */
const COMMON_WORD_MIN = 20;

/**
 * The corpus-wide words of a TracIn-WE column: those among the stored top words of more than
 * {@link COMMON_WORD_SHARE} of the examples (and at least 20). They score on most rows (stop words,
 * `url`, `date`) and so say nothing about one row; the tables leave them out and name them.
 */
export async function commonWords(store: StoreReader, run: StoredRun, tokenColumn: StoredColumn | undefined, examples: number): Promise<string[]> {
  if (tokenColumn === undefined) return [];
  const limit = Math.max(COMMON_WORD_MIN, COMMON_WORD_SHARE * examples);
  const rows = await store.all(
    'SELECT word, token, COUNT(DISTINCT example_key) AS n FROM token_scores WHERE run_id = ? AND column_id = ? GROUP BY word, token HAVING COUNT(DISTINCT example_key) > ? ORDER BY n DESC, word',
    [run.id, tokenColumn.id, limit],
  );
  return rows.map((r) => (r['word'] === null || r['word'] === undefined ? `#${text(r['token'])}` : text(r['word'])));
}

/** How a table of examples is built: its score columns, TracIn-WE words, and columns of its own. */
export interface RowsSpec {
  readonly columns: readonly StoredColumn[];
  readonly tokenColumn: StoredColumn | undefined;
  /** Words left out of the marks and word lists (corpus-wide words). */
  readonly hidden: ReadonlySet<string>;
  /** Extra numeric columns after the scores, e.g. the value compared within its label. */
  readonly extra?: readonly { readonly header: string; readonly of: (d: Detail | undefined) => number | undefined }[];
}

/** The headers of an example table built by {@link exampleRows}. */
export function exampleHeaders(spec: RowsSpec): string[] {
  return ['rank', 'id', 'source', 'label', 'text', ...spec.columns.map((c) => c.name), ...(spec.extra ?? []).map((e) => e.header), ...(spec.tokenColumn === undefined ? [] : [`words (${spec.tokenColumn.name})`])];
}

/** One row per key, in order: rank, id, source, label, text with marked words, every score, the extras, the words. */
export function exampleRows(keys: readonly number[], detail: ReadonlyMap<number, Detail>, spec: RowsSpec): Cell[][] {
  return keys.map((k, rank) => {
    const d = detail.get(k);
    const tokens = (d?.tokens ?? []).filter((t) => !spec.hidden.has(t.word.toLowerCase()));
    const words = tokens.map((t) => `<span class="tok"><mark class="${markClass(t.value)}">${escapeHtml(t.word)}</mark> ${escapeHtml(formatNumber(t.value))}</span>`).join(' ');
    return [
      rank + 1,
      cellOf(d?.id ?? k),
      groupName(d?.source),
      groupName(d?.label),
      raw(`<div class="text">${highlight(d?.text ?? '', tokens)}</div>`),
      ...spec.columns.map((c) => d?.values.get(c.id)),
      ...(spec.extra ?? []).map((e) => e.of(d)),
      ...(spec.tokenColumn === undefined ? [] : [raw(words)]),
    ];
  });
}

/** The sentence that names the corpus-wide words left out of the marks. */
export function hiddenNote(hidden: readonly string[]): string {
  if (hidden.length === 0) return '';
  const shown = hidden.slice(0, 30).map((w) => `<code>${escapeHtml(w)}</code>`).join(', ');
  return ` Corpus-wide words are left out: those among the top words of more than ${COMMON_WORD_SHARE * 100}% of the examples (${shown}${hidden.length > 30 ? `, and ${hidden.length - 30} more` : ''}); they score on most rows and say nothing about one.`;
}
