// One turn of the event loop inside long tf.js loops: on the cpu backend `await tensor.data()` resolves without letting timers run, so without it a job's lock renewal, progress bars and sink flushes starve.

/** Resolves after one turn of the event loop: expired timers and ready I/O callbacks run first. */
export function yieldTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}
