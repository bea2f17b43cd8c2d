// A failed job's InrunError code and field carried through Redis: BullMQ keeps only a failure's message, so the worker appends them and the caller reads them back.
import { InrunError, type InrunErrorCode } from '@inrun/store';

const TAIL = /\s\[inrun-error ([a-z_]+)(?: (.*))?\]$/;

/** The error a worker rethrows: an InrunError's message gains a tail naming its code and field. */
export function taggedForQueue(error: unknown): unknown {
  if (error instanceof InrunError && !TAIL.test(error.message)) {
    error.message = `${error.message} [inrun-error ${error.code}${error.field === undefined ? '' : ` ${error.field}`}]`;
  }
  return error;
}

/** A failure reason read back from Redis: the message without its tail, and the code and field when a worker tagged it. */
export function readReason(reason: string): { readonly message: string; readonly code?: InrunErrorCode; readonly field?: string } {
  const m = TAIL.exec(reason);
  if (m === null) return { message: reason };
  return { message: reason.slice(0, m.index), code: m[1] as InrunErrorCode, ...(m[2] === undefined ? {} : { field: m[2] }) };
}
