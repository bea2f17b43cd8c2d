// One warning channel for Node and browsers: process warnings where they exist, else the console.

/** Emits `message` as an `InrunWarning` process warning in Node, `console.warn` elsewhere (browsers have no `process`). */
export function warn(message: string): void {
  const proc = (globalThis as { process?: { emitWarning?: (message: string, type: string) => void } }).process;
  if (typeof proc?.emitWarning === 'function') proc.emitWarning(message, 'InrunWarning');
  else console.warn(`InrunWarning: ${message}`);
}
