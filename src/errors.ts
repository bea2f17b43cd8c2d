/**
 * The one error type inrun throws for bad input or misuse. `field` names the option, argument or
 * record field at fault (for example `targets.val.xs` or `args.ids`), so tools can point at it.
 */
export class InrunError extends Error {
  override readonly name = 'InrunError';
  readonly field: string | undefined;

  constructor(message: string, options: { field?: string; cause?: unknown } = {}) {
    super(options.field === undefined ? `inrun: ${message}` : `inrun: ${options.field}: ${message}`, {
      cause: options.cause,
    });
    this.field = options.field;
  }
}

/** Throws an {@link InrunError} saying what `field` should have been and what it was. */
export function invalid(field: string, expected: string, got: unknown): never {
  throw new InrunError(`expected ${expected}, got ${preview(got)}`, { field });
}

/** A short, safe rendering of a value for error messages. */
export function preview(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') {
    const shape = (value as { shape?: unknown }).shape;
    if (Array.isArray(shape)) return `a tensor of shape [${shape.join(', ')}]`;
    return value.constructor?.name ? `a ${value.constructor.name}` : 'an object';
  }
  // Only primitives reach this line (functions, symbols, numbers, booleans, bigints, undefined).
  return String(value as string | number | boolean | bigint | symbol | undefined);
}
