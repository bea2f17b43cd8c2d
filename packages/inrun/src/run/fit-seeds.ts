// FitSeeds: each run.fit call's shuffle seed: the given one, else the run's seed, then values derived from it.
export class FitSeeds {
  private calls = 0;

  constructor(private readonly seed: number) {}

  /** This call's seed: `given`, or the run's seed for the first call and a derived one for later calls. */
  next(given: number | undefined): number {
    return given ?? (this.calls++ === 0 ? this.seed : (this.seed + this.calls * 0x9e3779b1) >>> 0);
  }
}
