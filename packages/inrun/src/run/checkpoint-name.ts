// The name of a run's checkpoint folder after a step (no file system needed).

/** The folder for a run's checkpoint after `step`: `<parent>/step-000000123`. */
export function checkpointName(step: number): string {
  return `step-${String(Math.max(step, 0)).padStart(9, '0')}`;
}
