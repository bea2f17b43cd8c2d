// The report's first screen: warnings, then what to do (review queue, rows harmful within their label, sources after their label mix), each with its evidence and predicted effect.
import { type Datum, lines } from './charts.js';
import { type Cell, escapeHtml, formatNumber, table } from './html.js';
import { predictDrop, type DropPrediction } from './curate.js';
import { details, exampleHeaders, exampleRows, hiddenNote, type RowsSpec } from './example-rows.js';
import { adjustForLabelMix, coverageWarning, labelMeans, labelsDiffer, learningWarning, mixGap, mixShares, ReviewShares, type SourceLabelCell, type Warning } from './findings.js';
import { groupName } from './scan.js';
import { targetLossSpan } from './steps.js';
import type { StoredColumn, StoredRun } from '../read/stored-run.js';
import type { StoreReader } from '../read/reader.js';

/** What the first screen is built from. */
export interface FindingsInput {
  readonly store: StoreReader;
  readonly run: StoredRun;
  /** The lead first-order column (`shapley1:<target>`). */
  readonly value: StoredColumn | undefined;
  readonly self: StoredColumn | undefined;
  readonly tokenColumn: StoredColumn | undefined;
  readonly hidden: readonly string[];
  /** Rows in the review queue. */
  readonly review: number;
  /** Rows in the within-label table. */
  readonly top: number;
  /** The store's label counts over the training examples. */
  readonly labelCounts: ReadonlyMap<string, number>;
  /** The command the page tells the reader to run (`inrun curate <store>`). */
  readonly storePath: string;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const code = (s: string) => `<code>${escapeHtml(s)}</code>`;

/** The warnings (coverage, not learned) and the findings, first on the page. */
export async function findingsSection(input: FindingsInput): Promise<string> {
  const warnings = await warningsOf(input);
  const warn = warnings.map((w) => `<div class="warn" role="alert"><b>${escapeHtml(w.title)}.</b> ${escapeHtml(w.detail)}</div>`).join('\n');
  const items: string[] = [];
  const parts: string[] = [];
  const review = await reviewQueue(input);
  if (review !== null) {
    items.push(review.item);
    parts.push(review.html);
  }
  const mix = await labelMix(input);
  if (mix !== null) {
    items.push(...mix.items);
    parts.push(mix.html);
  }
  if (items.length === 0) items.push('<li>No <code>tracin_self</code> or first-order column: nothing to rank.</li>');
  return `<section id="findings"><h2>What to do</h2>${warn}
<ol class="findings">${items.join('\n')}</ol>
<p class="note">Each effect is a first-order prediction from this run (the change of the target loss if the rows had not been trained on; negative = it would fall), computed exactly as <code>inrun curate</code> computes it for the same <code>--drop</code>. It ignores how the rest of training would change without them: retrain to confirm. The decision is yours; <code>inrun curate</code> writes the manifest.</p>
${parts.join('\n')}</section>`;
}

async function warningsOf({ store, run, value, labelCounts }: FindingsInput): Promise<Warning[]> {
  const out: Warning[] = [];
  const coverage = coverageWarning(run.info.layers);
  if (coverage !== null) out.push(coverage);
  const target = value?.target ?? run.info.targets[0]?.name;
  if (target !== undefined) {
    const span = await targetLossSpan(store, run, target);
    const rows = run.info.targets.find((t) => t.name === target)?.rows ?? null;
    const learning = span.steps < 2 ? null : learningWarning(span.first, span.last, rows !== null && rows > 0 ? rows : null, labelCounts.size <= 100 ? labelCounts.size : 0);
    if (learning !== null) out.push(learning);
  }
  return out;
}

/** "dropping them predicts T (the target loss summed over its N rows), P per target row". */
function effect(p: DropPrediction): string {
  if (p.total === null) return 'no first-order column to predict from';
  const unit = p.targetRows === null ? 'the target loss summed over its rows' : `the target loss summed over its ${formatNumber(p.targetRows)} rows`;
  return `dropping them predicts <b>${escapeHtml(formatNumber(p.total))}</b> (${escapeHtml(unit)})${p.perRow === null ? '' : `, <b>${escapeHtml(formatNumber(p.perRow))}</b> per target row (the change of the mean loss)`}`;
}

const curateCommand = (storePath: string, drop: string, out: string) => code(`npx inrun curate ${storePath} --drop ${drop} --out ${out}`);

function rowsSpec(input: FindingsInput, means: ReadonlyMap<string, { mean: number }> | null): RowsSpec {
  const { run, value } = input;
  const within = value === undefined || means === null ? [] : [{ header: `${value.name} within its label`, of: (d: { label: unknown; values: Map<number, number> } | undefined) => {
    const v = d?.values.get(value.id);
    const m = means.get(groupName(d?.label));
    return v === undefined || m === undefined ? undefined : v - m.mean;
  } }];
  return { columns: run.columns, tokenColumn: input.tokenColumn, hidden: new Set(input.hidden), extra: within };
}

async function cellsOf(store: StoreReader, run: StoredRun, column: StoredColumn): Promise<SourceLabelCell[]> {
  const rows = await store.all(
    `SELECT e.source AS source, e.label AS label, COUNT(*) AS n, SUM(s.value) AS v FROM scores s JOIN examples e ON e.run_id = s.run_id AND e.example_key = s.example_key
     WHERE s.run_id = ? AND s.column_id = ? GROUP BY e.source, e.label`,
    [run.id, column.id],
  );
  return rows.map((r) => ({ source: groupName(r['source']), label: groupName(r['label']), count: Number(r['n']), sum: Number(r['v']) }));
}

/** The review queue: the highest self-influence first, with how many rows hold what share of the expected problems. */
async function reviewQueue(input: FindingsInput): Promise<{ item: string; html: string } | null> {
  const { store, run, self, value, review, storePath } = input;
  if (self === undefined) return null;
  const [stats] = await store.all('SELECT COUNT(*) AS n FROM scores WHERE run_id = ? AND column_id = ?', [run.id, self.id]);
  const count = Number(stats?.['n'] ?? 0);
  if (count === 0) return null;
  const [mid] = await store.all('SELECT value FROM scores WHERE run_id = ? AND column_id = ? ORDER BY value, example_key LIMIT 1 OFFSET ?', [run.id, self.id, Math.floor((count - 1) / 2)]);
  const median = Number(mid?.['value'] ?? 0);
  const [ex] = await store.all('SELECT SUM(CASE WHEN value > ? THEN value - ? ELSE 0 END) AS x FROM scores WHERE run_id = ? AND column_id = ?', [median, median, run.id, self.id]);
  const n = Math.min(review, count);
  // The queue's own length is a rank of the curve, so the share it holds is exact.
  const shares = new ReviewShares(count, median, Number(ex?.['x'] ?? 0), undefined, undefined, [n]);
  for await (const r of store.iterate('SELECT value FROM scores WHERE run_id = ? AND column_id = ? AND value > ? ORDER BY value DESC, example_key', [run.id, self.id, median])) shares.add(Number(r['value']));
  const queue = await predictDrop(store, run, { drop: `self-top:${n}`, keys: n });
  const cells = value === undefined ? [] : await cellsOf(store, run, value);
  const means = value === undefined ? null : labelMeans(cells);
  const spec = rowsSpec(input, means);
  const detail = await details(store, run, queue.keys, input.tokenColumn);
  const needed = shares.needed();
  const at = (t: number) => needed.get(t) ?? null;
  const heldByQueue = shares.shareOfTop(n);
  const neededText = [0.5, 0.8, 0.9].map((t) => (at(t) === null ? null : `${formatNumber(at(t)!)} rows (${pct(at(t)! / count)}) for ${t * 100}%`)).filter((x) => x !== null).join(', ');
  const chart = await lines(
    [
      ...shares.curve().map((p): Datum => ({ 'rows reviewed': p.rows / count, 'share of the expected problems': p.share, order: `highest ${self.name} first` })),
      { 'rows reviewed': 0, 'share of the expected problems': 0, order: `highest ${self.name} first` },
      // Rows at or below the median add no excess: the curve is flat from the last one above it.
      { 'rows reviewed': 1, 'share of the expected problems': shares.share(), order: `highest ${self.name} first` },
      { 'rows reviewed': 0, 'share of the expected problems': 0, order: 'random' },
      { 'rows reviewed': 1, 'share of the expected problems': 1, order: 'random' },
    ].sort((a, b) => Number(a['rows reviewed']) - Number(b['rows reviewed'])),
    { x: 'rows reviewed', y: 'share of the expected problems', series: 'order', title: 'Review queue: expected problems found (from the scores alone)', xFormat: '.0%', yFormat: '.0%', dashed: ['random'] },
  );
  const item = `<li><b>Review the ${formatNumber(n)} rows of highest self-influence first</b> (<a href="#review">the queue</a>): the likeliest mislabelled or odd rows. They hold ${pct(heldByQueue)} of the expected problems; ${escapeHtml(neededText)}. If they were not trained on, ${effect(queue)}. ${curateCommand(storePath, `self-top:${n}`, 'review.csv')} lists them.</li>`;
  const html = `<h3 id="review">Review queue: highest <code>${escapeHtml(self.name)}</code> first</h3>
<p class="note">Ranked by <code>${escapeHtml(self.name)}</code> (TracIn self-influence: how hard each row pulled on its own loss over the run; a row the model keeps fighting is mislabelled or unusual). Most rows sit near the median (${escapeHtml(formatNumber(median))}); the expected problems are counted as the self-influence above it, so the top rows' share of that excess is the share of the problems they hold. This uses the scores alone, never the labels. Beside each row: every score, and <code>${escapeHtml(value?.name ?? 'value')} within its label</code> (its value minus its label's mean value).${hiddenNote(input.hidden)}</p>
<div class="charts"><figure class="chart">${chart}</figure></div>
${table(exampleHeaders(spec), exampleRows(queue.keys, detail, spec), `Review queue (${formatNumber(n)} highest ${self.name})`)}`;
  return { item, html };
}

/** Rows harmful within their label, sources after their label mix, and the label-mix note with its balanced view. */
async function labelMix(input: FindingsInput): Promise<{ items: string[]; html: string } | null> {
  const { store, run, value, top, storePath, labelCounts } = input;
  if (value === undefined) return null;
  const cells = await cellsOf(store, run, value);
  const means = labelMeans(cells);
  const count = cells.reduce((a, c) => a + c.count, 0);
  const scale = cells.reduce((a, c) => a + Math.abs(c.sum), 0) / Math.max(1, count);
  const differ = labelsDiffer(means, scale);
  const items: string[] = [];
  // The target's label mix, when the run recorded it (meta.targetLabels: label -> rows).
  const recorded = targetLabels(run.info.meta);
  const trainMix = mixShares(labelCounts);
  const targetMix = recorded === null ? null : mixShares(recorded);
  const gap = targetMix === null ? null : mixGap(trainMix, targetMix);
  const mixText = (m: ReadonlyMap<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([l, s]) => `${escapeHtml(l)} ${pct(s)}`).join(', ');
  const meanRows: Cell[][] = [...means].sort((a, b) => b[1].count - a[1].count).map(([label, m]) => [label, m.count, trainMix.get(label) ?? 0, targetMix?.get(label) ?? null, m.sum, m.mean]);
  let mixHtml = '';
  if (differ || (gap !== null && gap > 0.05)) {
    const majority = targetMix === null ? null : [...targetMix].sort((a, b) => b[1] - a[1])[0]?.[0];
    const best = [...means].sort((a, b) => b[1].mean - a[1].mean)[0]?.[0];
    items.push(`<li><b>Values reward ${majority === null || majority === undefined ? `the label the target favours (here ${escapeHtml(best ?? '?')}: its rows' mean value is the highest)` : `the target's majority label, ${escapeHtml(majority)}`}.</b> ${targetMix === null ? '' : `The target is ${mixText(targetMix)}; the training data ${mixText(trainMix)}. `}A row's value measures its label as much as its quality, so comparing across labels (the <a href="#examples">most harmful</a> list, value by source) points at the minority label's correct rows. Compare within a label instead: <a href="#within">rows harmful within their label</a> and <a href="#balanced">sources after their label mix</a> (the label-balanced view).</li>`);
    mixHtml = `<p class="note">Mean <code>${escapeHtml(value.name)}</code> per label${targetMix === null ? ' (the run recorded no label mix of its target: <code>meta.targetLabels</code>)' : ''}:</p>${table(['label', 'examples', 'share of training', 'share of target', `sum of ${value.name}`, 'mean'], meanRows)}`;
  }
  // Rows harmful within their label: curate's label-lowest.
  const within = await predictDrop(store, run, { drop: `label-lowest:${Math.min(top, count)}`, column: value.name, keys: top });
  const spec = rowsSpec(input, means);
  const detail = await details(store, run, within.keys, input.tokenColumn);
  items.push(`<li><b>${formatNumber(within.dropped)} rows are the most harmful within their own label</b> (<a href="#within">table</a>: value minus its label's mean, lowest first): if they were not trained on, ${effect(within)}. ${curateCommand(storePath, `label-lowest:${within.dropped}`, 'within-label.csv')}.</li>`);
  // Sources after their label mix.
  const adjusted = adjustForLabelMix(cells);
  const worst = adjusted[0];
  const bestSource = adjusted.at(-1);
  const sourceRows: Cell[][] = adjusted.slice(0, 200).map((s) => [s.source, s.count, s.sum, s.expected, s.adjusted, s.adjusted / s.count]);
  if (worst !== undefined && bestSource !== undefined && adjusted.length > 1) {
    const drop = await predictDrop(store, run, { drop: `source:${worst.source}`, column: value.name });
    const verdict = (s: typeof worst) => `${code(s.source)} (${escapeHtml(formatNumber(s.adjusted))} after its label mix, ${escapeHtml(formatNumber(s.sum))} before)`;
    items.push(`<li><b>After their label mix, the most harmful source is ${verdict(worst)}, the most helpful ${verdict(bestSource)}</b> (<a href="#balanced">table</a>). A negative figure before the mix but not after says the source is mostly of a label the target disfavours, not that its rows are bad. Dropping ${code(worst.source)} ${effect(drop).replace(/^dropping them /, '')}. ${curateCommand(storePath, `source:${worst.source}`, 'source.csv')}.</li>`);
  }
  const html = `<h3 id="within">Rows harmful within their own label</h3>
<p class="note">By <code>${escapeHtml(value.name)}</code> minus the mean value of the row's label: each row compared with the rows of its own label, so a target that favours one label does not put the other label's correct rows first.</p>
${table(exampleHeaders(spec), exampleRows(within.keys, detail, spec), `Lowest ${value.name} within its label`)}
<h3 id="balanced">Sources after their label mix (the label-balanced view)</h3>
<p class="note">Expected = the source's rows of each label x that label's mean value: what its label mix alone gives it. After its label mix = sum - expected (over all sources they add up to 0). Dropping a source predicts its sum (before the mix): that is what training without it changes.</p>
${mixHtml}
${table(['source', 'examples', `sum of ${value.name}`, 'expected from its label mix', 'after its label mix', 'per example after'], sourceRows)}`;
  return { items, html };
}

/** `meta.targetLabels` (label -> rows) when it is an object of counts. */
function targetLabels(meta: Readonly<Record<string, unknown>> | undefined): Map<string, number> | null {
  const raw = meta?.['targetLabels'];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return null;
  const out = new Map<string, number>();
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) if (typeof v === 'number' && Number.isFinite(v) && v >= 0) out.set(k, v);
  return out.size === 0 ? null : out;
}

