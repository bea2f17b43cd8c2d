// Example ids: validation and the id -> device slot index.
import { InrunError, preview } from '../errors.js';
import type { ExampleId } from '../types.js';

/** A lone UTF-16 surrogate: stores would read it back as U+FFFD and merge distinct ids. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Validates one example id (a finite number or a non-empty, well-formed string). */
export function checkId(id: unknown, field: string): ExampleId {
  if (typeof id === 'number' ? Number.isFinite(id) : typeof id === 'string' && id.length > 0) {
    if (typeof id === 'string' && LONE_SURROGATE.test(id)) {
      throw new InrunError(`expected well-formed Unicode (this id holds a lone UTF-16 surrogate), got ${preview(id)}`, { field, code: 'invalid_input' });
    }
    return id as ExampleId;
  }
  throw new InrunError(`expected example ids to be finite numbers or non-empty strings, got ${preview(id)}`, { field, code: 'invalid_input' });
}

/**
 * Validates a list of example ids: an array (or array-like of numbers) of finite numbers or
 * non-empty strings, without duplicates, of `length` entries when given.
 */
export function checkIds(ids: unknown, field: string, length?: number): ExampleId[] {
  const list: unknown[] | null = Array.isArray(ids)
    ? ids
    : ArrayBuffer.isView(ids) && !(ids instanceof DataView)
      ? Array.from(ids as unknown as ArrayLike<number>)
      : null;
  if (list === null) throw new InrunError(`expected an array of example ids, got ${preview(ids)}`, { field, code: 'invalid_input' });
  if (length !== undefined && list.length !== length) {
    throw new InrunError(`expected ${length} ids (one per example row), got ${list.length}`, { field, code: 'invalid_input' });
  }
  const seen = new Set<ExampleId>();
  for (const [i, raw] of list.entries()) {
    const id = checkId(raw, `${field}[${i}]`);
    if (seen.has(id)) throw new InrunError(`duplicate example id ${preview(id)} at index ${i}; ids must be unique`, { field, code: 'invalid_input' });
    seen.add(id);
  }
  return list as ExampleId[];
}

/** Stable dense slots for example ids: slot = order of first sight. Rows of the device totals. */
export class IdIndex {
  private readonly slots = new Map<ExampleId, number>();
  readonly ids: ExampleId[] = [];

  get size(): number {
    return this.ids.length;
  }

  slotOf(id: ExampleId): number {
    let slot = this.slots.get(id);
    if (slot === undefined) {
      slot = this.ids.length;
      this.slots.set(id, slot);
      this.ids.push(id);
    }
    return slot;
  }

  /** Slots of one batch's ids (validated, registering new ones). */
  slotsOf(ids: readonly ExampleId[], field: string): Int32Array {
    const checked = checkIds(ids, field);
    const out = new Int32Array(checked.length);
    checked.forEach((id, i) => (out[i] = this.slotOf(id)));
    return out;
  }
}
