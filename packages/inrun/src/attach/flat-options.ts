// The flat attach() keys kept for one release: each maps to its grouped key, warns once, and may not be given with it.
import { InrunError } from '../errors.js';

/**
 * Deprecated flat keys of {@link AttachOptions} and the key inside `delivery` that replaced each. The
 * table in docs/hooks.md ("Options") is this one; both go in the next major release.
 */
export const FLAT_KEYS = {
  sinkErrors: 'onError',
  sinkTimeoutMs: 'timeoutMs',
  flushEvery: 'flushEvery',
  totalsEvery: 'totalsEvery',
  stepRecords: 'stepRecords',
} as const;

export type FlatKey = keyof typeof FLAT_KEYS;

/** Keys already warned about in this process: a long-lived app that attaches per job warns once, not per run. */
const warned = new Set<FlatKey>();

/** A deprecation warning: Node's process warning (so `--no-deprecation` silences it), else the console. */
function warnOnce(key: FlatKey): void {
  if (warned.has(key)) return;
  warned.add(key);
  const message = `inrun: attach option ${key} is deprecated; use delivery.${FLAT_KEYS[key]} (the flat key goes in the next major release; docs/hooks.md#options)`;
  const proc = (globalThis as { process?: { emitWarning?: (message: string, options: { type: string; code: string }) => void } }).process;
  if (typeof proc?.emitWarning === 'function') proc.emitWarning(message, { type: 'DeprecationWarning', code: 'INRUN_FLAT_OPTION' });
  else console.warn(message);
}

/**
 * The `delivery` group with the flat keys moved in: each flat key given is warned about once per
 * process, and a flat key given together with its grouped key is an {@link InrunError} naming both
 * (whichever value was meant, one of them would be silently ignored).
 */
export function withFlatKeys<D extends object>(options: Readonly<Partial<Record<FlatKey, unknown>>>, delivery: D | undefined): D | undefined {
  let merged: Record<string, unknown> | undefined;
  for (const key of Object.keys(FLAT_KEYS) as FlatKey[]) {
    const value = options[key];
    if (value === undefined) continue;
    const grouped = FLAT_KEYS[key];
    if (delivery !== undefined && (delivery as Record<string, unknown>)[grouped] !== undefined) {
      throw new InrunError(`give delivery.${grouped} or the deprecated ${key}, not both`, { field: `delivery.${grouped}`, code: 'invalid_option' });
    }
    warnOnce(key);
    merged ??= { ...delivery };
    merged[grouped] = value;
  }
  return (merged as D | undefined) ?? delivery;
}
