// RunInfoLog: the run's metadata as frozen snapshots; a fact learnt after attach makes a new snapshot, never an edit.
import type { RunInfo } from '../types.js';

/**
 * attach builds the first snapshot complete (layers, targetPass and hvp are all known there, before any
 * sink sees it). Two facts only come later: each `run.fit` call's shuffle seed, and how many token
 * positions changed (known at the first top-tokens read). Rather than mutate an object the sinks already
 * hold, each makes a new frozen snapshot: sinks (through Delivery's `() => RunInfo`) and `run.info` read
 * the newest, and an object once handed out never changes.
 */
export class RunInfoLog {
  private snapshot: RunInfo;

  constructor(info: RunInfo) {
    this.snapshot = frozen(info);
  }

  /** The newest snapshot. */
  get current(): RunInfo {
    return this.snapshot;
  }

  /** A `run.fit` call's shuffle seed (`seeds`, in call order). */
  addSeed(seed: number): void {
    this.snapshot = frozen({ ...this.snapshot, seeds: [...this.snapshot.seeds, seed] });
  }

  /** A fact about the run found while it runs, kept in `meta` beside the user's entries. */
  noteMeta(key: string, value: unknown): void {
    if (Object.is(this.snapshot.meta[key], value)) return;
    this.snapshot = frozen({ ...this.snapshot, meta: { ...this.snapshot.meta, [key]: value } });
  }
}

/** A shallow copy, frozen with its two growing parts (`seeds`, `meta`): the user's `meta` object stays theirs. */
function frozen(info: RunInfo): RunInfo {
  return Object.freeze({ ...info, seeds: Object.freeze([...info.seeds]) as number[], meta: Object.freeze({ ...info.meta }) });
}
