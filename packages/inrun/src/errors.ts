// Errors of the training side: InrunError and its helpers, defined once in @inrun/store (one class, so `instanceof` holds across packages).
export { InrunError } from '@inrun/store/core';
export type { InrunErrorCode } from '@inrun/store/core';
export { invalid, preview, quote } from '@inrun/store/core';
