// One request, two uses: `attach({ targets })` and `untrac({ targets })` take a removal request where they take `{ xs, ys }` rows.
import type { UnlearnRequest, UnlearnRows } from './options.js';

/** Whether a target value is a removal request (`{ forget, ... }`) rather than `{ xs, ys }` rows. */
export function isUnlearnRequest(value: unknown): value is UnlearnRequest {
  return typeof value === 'object' && value !== null && 'forget' in value && !('xs' in value);
}

/**
 * Named targets with every removal request replaced by its `forget` rows: what taught the model the
 * concept (or the rows) is the training data that lowered their loss. Other values pass unchanged,
 * and are checked where they are used.
 */
export function requestTargets<T>(targets: Readonly<Record<string, T | UnlearnRequest>>): Record<string, T | UnlearnRows> {
  if (targets === null || typeof targets !== 'object' || Array.isArray(targets)) return targets as Record<string, T>;
  return Object.fromEntries(Object.entries(targets).map(([name, value]) => [name, isUnlearnRequest(value) ? value.forget : value]));
}
