// Per-token TracIn-WE totals on the device, and the top tokens per example.
import * as tf from '@tensorflow/tfjs';
import type { TokenScore } from '../types.js';
import { addRows, setRows } from './row-writes.js';
import { maxOf, variableOf } from './totals.js';

/**
 * Per-position running sums of TracIn-WE terms for one embedding layer, on the device:
 * `terms [slots, positions, targets]` and the token id last seen at each position (`-1` = none).
 *
 * Positions assume an example keeps its token sequence between steps (fixed padding). If a seen
 * position later holds another id, `changed` counts it, and reports say the per-token view of those
 * examples mixes tokens.
 */
export class TokenTotals {
  private terms: tf.Variable;
  private ids: tf.Variable;
  private changedCount: tf.Variable;
  private capacity: number;
  private positions = 0;

  constructor(
    private readonly targets: number,
    initialCapacity = 1024,
  ) {
    this.capacity = Math.max(1, initialCapacity);
    this.terms = variableOf(tf.zeros([this.capacity, 0, targets]));
    this.ids = variableOf(tf.fill([this.capacity, 0], -1, 'int32'));
    this.changedCount = variableOf(tf.scalar(0));
  }

  /** Adds a step's terms `[n, T, targets]` for token ids `[n, T]` at rows `slots`. Call inside `tf.tidy`. */
  add(slots: Int32Array, ids: tf.Tensor2D, terms: tf.Tensor3D): void {
    const n = slots.length;
    const t = ids.shape[1];
    this.ensure(maxOf(slots) + 1, t);
    const width = this.positions;
    const pad = width - t;
    const padIds = pad > 0 ? tf.pad(ids, [[0, 0], [0, pad]], -1) : ids;
    const padTerms = pad > 0 ? tf.pad(terms, [[0, 0], [0, pad], [0, 0]]) : terms;
    const indices = tf.tensor2d(slots, [n, 1], 'int32');
    this.terms.assign(addRows(this.terms, indices, padTerms));
    const old = tf.gather(this.ids, tf.reshape(indices, [n]));
    const changed = tf.logicalAnd(tf.logicalAnd(tf.greaterEqual(old, 0), tf.notEqual(old, padIds)), tf.greaterEqual(padIds, 0));
    this.changedCount.assign(tf.add(this.changedCount, tf.sum(tf.cast(changed, 'float32'))));
    this.ids.assign(setRows(this.ids, indices, padIds));
  }

  private ensure(rows: number, positions: number): void {
    let capacity = this.capacity;
    while (capacity < rows) capacity *= 2;
    const width = Math.max(this.positions, positions);
    if (capacity === this.capacity && width === this.positions) return;
    const addRows = capacity - this.capacity;
    const addCols = width - this.positions;
    const terms = tf.tidy(() => tf.pad(this.terms, [[0, addRows], [0, addCols], [0, 0]]));
    const ids = tf.tidy(() => tf.pad(this.ids, [[0, addRows], [0, addCols]], -1));
    this.terms.dispose();
    this.ids.dispose();
    this.terms = variableOf(terms);
    this.ids = variableOf(ids);
    this.capacity = capacity;
    this.positions = width;
  }

  /**
   * Each example's top tokens per target, by |score|: positions grouped by token id, summed.
   * One asynchronous read of the device sums.
   */
  async top(
    rows: number,
    topK: number,
    ignore: ReadonlySet<number>,
    vocabulary: readonly string[] | undefined,
  ): Promise<{ perTarget: TokenScore[][][]; changedPositions: number }> {
    const [terms, ids, changed] = await Promise.all([this.terms.data(), this.ids.data(), this.changedCount.data()]);
    const width = this.positions;
    const perTarget: TokenScore[][][] = Array.from({ length: this.targets }, () => []);
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < this.targets; k++) {
        const byToken = new Map<number, number>();
        if (r < this.capacity) {
          for (let p = 0; p < width; p++) {
            const token = ids[r * width + p]!;
            if (token < 0 || ignore.has(token)) continue;
            byToken.set(token, (byToken.get(token) ?? 0) + terms[(r * width + p) * this.targets + k]!);
          }
        }
        const top = [...byToken.entries()]
          .sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]))
          .slice(0, topK)
          .map(([token, score]): TokenScore => {
            const word = vocabulary?.[token];
            return word === undefined ? { token, score } : { token, word, score };
          });
        perTarget[k]!.push(top);
      }
    }
    return { perTarget, changedPositions: changed[0] ?? 0 };
  }

  dispose(): void {
    this.terms.dispose();
    this.ids.dispose();
    this.changedCount.dispose();
  }
}
