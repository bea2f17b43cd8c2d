// surfaceSinkFailure: the first sink failure not yet reported, thrown as the error that stops training.
import { InrunError } from '../errors.js';
import { reason, type Delivery } from '../stream/delivery.js';

/** Throws the first sink failure not yet reported (under `sinkErrors: 'stop'`). */
export function surfaceSinkFailure(delivery: Delivery): void {
  const failure = delivery.takeFailure();
  if (failure === null) return;
  throw new InrunError(
    `sink ${failure.sink} failed in ${failure.call}: ${reason(failure.error.cause)}. Training stopped; what the sinks wrote stays readable (sinkErrors: 'continue' trains on without a failing sink)`,
    { field: 'sinks', cause: failure.error.cause, code: 'sink_failed' },
  );
}
