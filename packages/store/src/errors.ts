// InrunError: the one error type inrun throws, with a stable code and the field at fault.

/**
 * Stable codes of {@link InrunError}; tools may branch on them (messages may change).
 * - `invalid_option`: an option of `attach`, `tracin` or a sink has the wrong type or value.
 * - `invalid_input`: data handed to a call is wrong (ids, rows, tensors, labels).
 * - `shape_mismatch`: tensors whose shapes do not fit the model or each other.
 * - `unsupported_layer`: a layer inrun cannot attribute through was asked for.
 * - `unsupported_model`: the model, loss or optimizer lacks something a requested feature needs.
 * - `invalid_state`: a call out of order (after close, a second attach, resume after a step).
 * - `sink_failed`: a sink threw or refused what it was given.
 * - `bad_checkpoint`: a checkpoint folder or file is missing, foreign or corrupt.
 * - `unsupported_platform`: the feature needs what this platform lacks (a file system in a browser); the message says what to use instead.
 * - `internal`: an inrun bug; please report it.
 */
export type InrunErrorCode =
  | 'invalid_option'
  | 'invalid_input'
  | 'shape_mismatch'
  | 'unsupported_layer'
  | 'unsupported_model'
  | 'invalid_state'
  | 'sink_failed'
  | 'bad_checkpoint'
  | 'unsupported_platform'
  | 'internal';

/**
 * The one error type inrun throws for bad input or misuse. `code` is stable ({@link InrunErrorCode});
 * `field` names the option, argument or record field at fault (for example `targets.val.xs` or
 * `args.ids`), so tools can point at it.
 */
export class InrunError extends Error {
  override readonly name = 'InrunError';
  readonly code: InrunErrorCode;
  readonly field: string | undefined;

  /** @param options.code - defaults to `invalid_option` when a field is named, else `invalid_input`. */
  constructor(message: string, options: { code?: InrunErrorCode; field?: string; cause?: unknown } = {}) {
    super(options.field === undefined ? `inrun: ${message}` : `inrun: ${options.field}: ${message}`, {
      cause: options.cause,
    });
    this.field = options.field;
    this.code = options.code ?? (options.field === undefined ? 'invalid_input' : 'invalid_option');
  }
}

/** Throws an {@link InrunError} saying what `field` should have been and what it was. */
export function invalid(field: string, expected: string, got: unknown, code: InrunErrorCode = 'invalid_option'): never {
  throw new InrunError(`expected ${expected}, got ${preview(got)}`, { field, code });
}

/** A string for a message, quoted, cut to `max` characters (paths and names the user chose). */
export function quote(text: string, max = 200): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
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
