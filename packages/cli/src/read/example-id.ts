// Example ids as they were given: a number or text, whatever kind of store holds them.
import { text } from './text.js';

/**
 * An example id from a store, as given: `id` as a reader returns it, `idType` from
 * `StoreReader.idType`. A Parquet store and a merged dataset return ids as text; their
 * numbers come back as numbers here, so the number 0 and the text "0" stay two ids (as SQLite keeps
 * them). An unknown type (a dataset an older inrun merged) leaves the id as read.
 */
export function typedId(id: unknown, idType: unknown): unknown {
  if (idType === 'number' && typeof id === 'string') return Number(id);
  if (idType === 'string' && typeof id === 'number') return String(id);
  return id;
}

/** A key that tells a number id from a text id with the same digits (`number:0`, `string:0`). */
export const idKey = (id: unknown): string => `${typeof id}:${text(id)}`;
