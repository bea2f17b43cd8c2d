// Undoing an instrumentation: every hook inrun installs returns one of these.

/** Undoes an instrumentation. */
export type Restore = () => void;
