// One run per model and optimizer: marking them attached while a run holds them.
import { InrunError } from '../errors.js';
import type { Restore } from '../hooks/restore.js';

const ATTACHED = Symbol.for('inrun.attached');

/** Marks `owner` (a model or optimizer) as attached; throws if a live run holds it already. */
export function claim(owner: object, what: string): Restore {
  const o = owner as { [ATTACHED]?: boolean };
  if (o[ATTACHED]) throw new InrunError(`this ${what} is already attached to a run; close() that run first`, { field: 'model', code: 'invalid_state' });
  o[ATTACHED] = true;
  return () => {
    delete o[ATTACHED];
  };
}
