// checkOutputNotInput: an output path that is an input (or inside one, or holding one) is refused before anything is written.
import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { InrunError } from '@inrun/store';

/** The real path `path` has or would have: its nearest existing ancestor resolved (symlinks followed), the rest appended. */
function realTarget(path: string): string {
  const full = resolve(path);
  if (existsSync(full)) return realpathSync(full);
  const parent = dirname(full);
  return parent === full ? full : join(realTarget(parent), basename(full));
}

/** Whether `inner` is `outer` or lies inside it. */
const within = (inner: string, outer: string): boolean => {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

/**
 * Throws `invalid_option` on `field` (exit 2) when `out` is one of `inputs`, lies inside one (a file
 * of a Parquet store or dataset), or holds one, through symlinks too: writing it would overwrite or
 * change a store being read. Nothing is written before this check.
 */
export function checkOutputNotInput(out: string, inputs: readonly string[], field = 'out'): void {
  const target = realTarget(out);
  for (const input of inputs) {
    if (!existsSync(input)) continue;
    const source = realpathSync(input);
    if (within(target, source) || within(source, target)) {
      throw new InrunError(`--${field} ${out} ${target === source ? 'is' : within(target, source) ? 'is inside' : 'holds'} the input ${input}: writing it would change a store being read; choose another path`, { field, code: 'invalid_option' });
    }
  }
}
