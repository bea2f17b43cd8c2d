// writeReport: one self-contained HTML page that turns a stored run's scores into a curation decision.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InrunError } from '@inrun/store';
import { type Datum, groupedBars, histogram, lines } from './charts.js';
import { type Cell, escapeHtml, formatNumber, page, table } from './html.js';
import { dropCount, predictLowest, targetRowsOf } from './curate.js';
import { readRun, type StoredColumn, type StoredRun, valueColumn } from '../read/stored-run.js';
import { cellOf, commonWords, details, exampleHeaders, exampleRows, hiddenNote } from './example-rows.js';
import { findingsSection } from './findings-section.js';
import { type ColumnScan, type Histogram, readGroups, scanColumn } from './scan.js';
import { stepSeries } from './steps.js';
import { openStore } from '../read/open-store.js';
import { checkOutputNotInput } from '../read/output-path.js';
import { text } from '../read/text.js';
import type { StoreReader } from '../read/reader.js';

/** Options of {@link writeReport}. */
export interface ReportOptions {
  /** The HTML file to write. @defaultValue `report.html` */
  readonly out?: string;
  /** The run to report. @defaultValue the newest run of the store */
  readonly run?: string;
  /** The target whose columns lead the report. @defaultValue the target of the first `shapley1` column */
  readonly target?: string;
  /** Rows in each top/bottom table. @defaultValue 25 */
  readonly top?: number;
  /** Rows in the review queue (highest `tracin_self` first). @defaultValue 50 */
  readonly review?: number;
  /** Metrics measured after the run (test accuracy, loss), shown in the summary. */
  readonly metrics?: Readonly<Record<string, number | string>>;
  /** Told how far long work has got: a phase name, rows done, rows in all. */
  readonly progress?: (phase: string, done: number, total: number) => void;
}

/** What {@link writeReport} wrote. */
export interface ReportResult {
  readonly out: string;
  readonly runId: string;
  readonly bytes: number;
}

/** One line per method, linked to docs/methods.md. */
const MEANING: Record<string, string> = {
  shapley1: 'first-order In-Run Data Shapley: target loss the example took away over the run (positive = helped)',
  shapley2: 'second-order In-Run Data Shapley: the first-order value with the curvature of the target loss',
  tracin_self: 'TracIn self-influence: how much the example pulled on its own loss; high = unusual or likely mislabelled',
  tracin_we: 'TracIn-WE: the first-order value over the word embedding only, with a score per word',
  trak: "TRAK (after the run, from its checkpoints): the example's summed score over the target's queries, the predicted rise of their model output (margin) with it in training (positive = helped)",
};


/**
 * Writes the HTML report of one run of a store (a SQLite file or a Parquet folder): summary, value by
 * source, score distributions, the most helpful and harmful examples, self-influence outliers,
 * curation curves and the per-step view. Every string from the store is escaped and the page loads
 * nothing from anywhere. Large stores stream: tables keep the top and bottom rows, charts aggregate.
 */
export async function writeReport(storePath: string, options: ReportOptions = {}): Promise<ReportResult> {
  const out = options.out ?? 'report.html';
  const top = options.top ?? 25;
  if (!Number.isInteger(top) || top < 1) throw new InrunError(`expected a positive integer, got ${top}`, { field: 'top', code: 'invalid_option' });
  const review = options.review ?? 50;
  if (!Number.isInteger(review) || review < 1) throw new InrunError(`expected a positive integer, got ${review}`, { field: 'review', code: 'invalid_option' });
  checkOutputNotInput(out, [storePath]);
  const store = await openStore(storePath);
  try {
    const run = await readRun(store, options.run);
    const html = await renderReport(store, run, { ...options, top, review });
    mkdirSync(dirname(resolve(out)), { recursive: true });
    writeFileSync(out, html);
    return { out, runId: run.id, bytes: Buffer.byteLength(html) };
  } finally {
    await store.close();
  }
}

async function renderReport(store: StoreReader, run: StoredRun, options: ReportOptions & { top: number; review: number }): Promise<string> {
  const value = leadColumn(run, options.target);
  const self = run.columns.find((c) => c.method === 'tracin_self');
  const groups = await readGroups(store, run);
  const scans: ColumnScan[] = [];
  for (const column of run.columns) {
    scans.push(await scanColumn(store, run, column, groups, options.top, (done, total) => options.progress?.(`scan ${column.name}`, done, total)));
  }
  const valueScan = value === undefined ? undefined : scans.find((s) => s.column.id === value.id);
  const tokenColumn = run.columns.find((c) => c.method === 'tracin_we' && (value === undefined || c.target === value.target));
  const hidden = await commonWords(store, run, tokenColumn, run.examples);
  const labelCounts = new Map(groups.labels.map((l, i) => [l, groups.labelCounts[i]!]));
  const sections = [
    await findingsSection({ store, run, value, self, tokenColumn, hidden, review: options.review, top: options.top, labelCounts, storePath: store.path }),
    summary(run, options.metrics ?? {}),
    await sources(store, run, value, valueScan),
    await distributions(scans),
    valueScan === undefined ? '' : await examplesSection(store, run, valueScan, tokenColumn, hidden, options.top),
    await curation(store, run, valueScan, scans),
    value === undefined ? '' : await perStep(store, run, value),
  ];
  const nav = ['findings', 'summary', 'sources', 'distributions', 'examples', 'curation', 'steps'].map((id) => `<a href="#${id}">${id}</a>`).join(' · ');
  return page(`inrun report: ${run.id}`, `<h1>inrun report</h1><p>Run <b>${escapeHtml(run.id)}</b> of <code>${escapeHtml(store.path)}</code>. ${nav}</p>\n${sections.join('\n')}`);
}

/** The column the report leads with: `shapley1:<target>`, else any column of that target. */
function leadColumn(run: StoredRun, target: string | undefined): StoredColumn | undefined {
  if (target === undefined) return valueColumn(run);
  const ofTarget = run.columns.filter((c) => c.target === target);
  if (ofTarget.length === 0) {
    const targets = [...new Set(run.columns.flatMap((c) => (c.target === null ? [] : [c.target])))];
    throw new InrunError(`no column of target "${target}" in run "${run.id}"; its targets: ${targets.join(', ') || '(none)'}`, { field: 'target', code: 'invalid_option' });
  }
  return ofTarget.find((c) => c.method === 'shapley1') ?? ofTarget[0];
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function summary(run: StoredRun, metrics: Readonly<Record<string, number | string>>): string {
  const { info } = run;
  const { covered, skipped, coveredParams, trainableParams } = info.layers;
  // Named, not linked: a file:// link would show the author's file system to whoever the page is shared with.
  const docs = "inrun's <code>docs/methods.md</code>";
  const item = (term: string, html: string) => `<dt>${escapeHtml(term)}</dt><dd>${html}</dd>`;
  const columns = run.columns.map((c) => `<li><code>${escapeHtml(c.name)}</code>: ${escapeHtml(MEANING[c.method] ?? c.method)}</li>`).join('');
  const meta = Object.entries(info.meta ?? {}).map(([k, v]) => `${escapeHtml(k)} = ${escapeHtml(text(v))}`).join('; ');
  return `<section id="summary"><h2>Summary</h2><dl class="summary">
${item('model', `${escapeHtml(info.model.name)} (${escapeHtml(info.model.className)}), ${formatNumber(info.model.params)} parameters`)}
${item('optimizer', `${escapeHtml(info.optimizer.className)}, attribution ${escapeHtml(info.optimizer.attribution)}; loss reduction ${escapeHtml(info.lossReduction)}`)}
${item('targets', escapeHtml(info.targets.map((t) => `${t.name} (${t.rows} rows)`).join(', ') || '(none)'))}
${item('methods', escapeHtml(info.methods.join(', ')))}
${item('layers covered', escapeHtml(covered.map((l) => `${l.name} (${l.kind}, ${l.params})`).join(', ') || '(none)'))}
${item('parameters covered', `${formatNumber(coveredParams)} of ${formatNumber(trainableParams)} trainable (${trainableParams > 0 ? pct(coveredParams / trainableParams) : 'n/a'})`)}
${skipped.length === 0 ? '' : item('layers skipped', escapeHtml(skipped.map((l) => `${l.name} (${l.className}): ${l.reason}`).join('; ')))}
${item('steps', `${formatNumber(run.steps)} stored; totals after step ${run.totalsStep ?? '(none yet)'}; status ${escapeHtml(run.status)}`)}
${item('examples', formatNumber(run.examples))}
${item('run', `started ${escapeHtml(run.startedAt)}${run.endedAt === null ? '' : `, ended ${escapeHtml(run.endedAt)}`}; inrun ${escapeHtml(info.inrunVersion)}, tf.js ${escapeHtml(info.tfjsVersion)} on ${escapeHtml(info.backend)}`)}
${Object.keys(metrics).length === 0 ? '' : item('metrics', Object.entries(metrics).map(([k, v]) => `${escapeHtml(k)} ${escapeHtml(typeof v === 'number' ? formatNumber(v) : v)}`).join('; '))}
${meta === '' ? '' : item('meta', meta)}
</dl><p>What each score means (${docs}); positive = the example lowered the target loss:</p><ul>${columns}</ul></section>`;
}

async function sources(store: StoreReader, run: StoredRun, value: StoredColumn | undefined, scan: ColumnScan | undefined): Promise<string> {
  if (value === undefined || scan === undefined) return '<section id="sources"><h2>Value by source</h2><p>No score column.</p></section>';
  const entries = [...scan.sources.entries()].sort((a, b) => b[1].count - a[1].count || (a[0] < b[0] ? -1 : 1));
  const shown = entries.slice(0, 30);
  const bars: Datum[] = shown.flatMap(([source, s]) => [
    { source, measure: 'share of data', share: s.count / scan.count },
    { source, measure: 'share of value', share: scan.sum === 0 ? 0 : s.sum / scan.sum },
  ]);
  const rows: Cell[][] = entries.map(([source, s]) => [source, s.count, s.count / scan.count, s.sum, scan.sum === 0 ? 0 : s.sum / scan.sum, s.sum / s.count]);
  const chart = await groupedBars(bars, { category: 'source', series: 'measure', value: 'share', title: `Share of data vs share of ${value.name}`, format: '.0%' });
  return `<section id="sources"><h2>Value by source</h2>
<p class="note">Share of value = the source's summed <code>${escapeHtml(value.name)}</code> over the run's total (${escapeHtml(formatNumber(scan.sum))}); a source above its share of data helped more than its size.${entries.length > shown.length ? ` The chart shows the ${shown.length} largest of ${entries.length} sources.` : ''} Value over training is in <a href="#steps">the per-step view</a>.</p>
<div class="charts"><figure class="chart">${chart}</figure></div>
${table(['source', 'examples', 'share of data', `sum of ${value.name}`, 'share of value', 'mean'], rows.slice(0, 200))}
${await untrac(store, run)}</section>`;
}

/** UnTrac's per-source results, when the store has them (table `source_influence`). */
async function untrac(store: StoreReader, run: StoredRun): Promise<string> {
  if (!(await store.tables()).includes('source_influence')) return '';
  const all = await store.all('SELECT * FROM source_influence');
  const rows = all.filter((r) => !('run_id' in r) || r['run_id'] === run.id);
  if (rows.length === 0) return '';
  const headers = Object.keys(rows[0]!).filter((h) => h !== 'run_id');
  return `<h3>UnTrac: what unlearning each source does to the target</h3>${table(headers, rows.slice(0, 500).map((r) => headers.map((h) => cellOf(r[h]))))}`;
}

function histogramData(h: Histogram, group: string): Datum[] {
  return [...h.groups.entries()].flatMap(([name, counts]) =>
    Array.from(counts, (count, i) => ({ [group]: name, x0: h.edges[i]!, x1: h.edges[i + 1]!, count })).filter((d) => d.count > 0),
  );
}

async function distributions(scans: readonly ColumnScan[]): Promise<string> {
  const figures: string[] = [];
  for (const s of scans) {
    figures.push(`<figure class="chart">${await histogram(histogramData(s.byLabel, 'label'), { group: 'label', title: `${s.column.name} by label`, x: s.column.name, scale: s.byLabel.scale })}</figure>`);
    figures.push(`<figure class="chart">${await histogram(histogramData(s.bySource, 'source'), { group: 'source', title: `${s.column.name} by source`, x: s.column.name, scale: s.bySource.scale })}</figure>`);
  }
  return `<section id="distributions"><h2>Score distributions</h2><p class="note">Counts of examples per score bin, stacked by label and by source (the rarest groups share one colour, "(other)"; the 0.5% of rows at each end fall in the end bins). <code>tracin_self</code> is heavy-tailed: its axis is symlog (linear up to the median row's value, logarithmic beyond), so the bulk and the tail both show.</p><div class="charts">${figures.join('\n')}</div></section>`;
}

async function examplesSection(store: StoreReader, run: StoredRun, value: ColumnScan, tokenColumn: StoredColumn | undefined, hidden: readonly string[], top: number): Promise<string> {
  const detail = await details(store, run, [...value.highest, ...value.lowest], tokenColumn);
  const spec = { columns: run.columns, tokenColumn, hidden: new Set(hidden) };
  const headers = exampleHeaders(spec);
  const legend = tokenColumn === undefined ? '' : ` Words are marked by their <code>${escapeHtml(tokenColumn.name)}</code> score: <mark class="pos">helped</mark>, <mark class="neg">hurt</mark>, <mark class="zero">neither (0)</mark>.${hiddenNote(hidden)}`;
  const name = escapeHtml(value.column.name);
  return `<section id="examples"><h2>Most helpful and most harmful examples</h2><p class="note">By <code>${name}</code>, ${top} of each end of ${formatNumber(value.count)} examples, compared across labels (the review queue and the rows harmful within their label are <a href="#findings">above</a>).${legend}</p>
${table(headers, exampleRows(value.highest, detail, spec), `Most helpful (highest ${value.column.name})`)}
${table(headers, exampleRows(value.lowest, detail, spec), `Most harmful (lowest ${value.column.name})`)}
</section>`;
}

async function curation(store: StoreReader, run: StoredRun, value: ColumnScan | undefined, scans: readonly ColumnScan[]): Promise<string> {
  if (value === undefined) return '<section id="curation"><h2>Curation</h2><p>No score column.</p></section>';
  const drop = await lines(
    value.dropCurve.map((p) => ({ 'fraction dropped': p.fraction, 'predicted change of target loss': p.value, curve: `lowest ${value.column.name} first` })),
    { x: 'fraction dropped', y: 'predicted change of target loss', series: 'curve', title: `Dropping the lowest ${value.column.name} first`, xFormat: '.0%', yFormat: '.3~r' },
  );
  // The 5% figure is computed from the exact rows, the way `inrun curate --drop lowest:5%` computes it (not read off the sampled curve).
  const fiveCount = dropCount(value.count, 5);
  const five = await predictLowest(store, run, value.column, fiveCount);
  const rows = targetRowsOf(run, value.column);
  const unit = rows === null ? 'the target loss summed over its rows' : `the target loss summed over its ${formatNumber(rows)} rows`;
  const fiveText = `; dropping the lowest 5% (${formatNumber(fiveCount)} examples) predicts ${formatNumber(five.total)} (${unit})${five.perRow === null ? '' : `, ${formatNumber(five.perRow)} per target row (the change of the mean loss)`}`;
  let inspection = '';
  const withNoisy = scans.filter((s) => s.inspection !== null);
  if (withNoisy.length > 0) {
    const data: Datum[] = [];
    for (const s of withNoisy) {
      // Suspicion: high self-influence, or a low target-directed value.
      const curve = s.column.method === 'tracin_self' ? s.inspection!.highestFirst : s.inspection!.lowestFirst;
      const order = s.column.method === 'tracin_self' ? 'highest' : 'lowest';
      for (const p of curve) data.push({ 'fraction inspected': p.fraction, 'share of noisy rows found': p.value, order: `${order} ${s.column.name} first` });
    }
    for (const f of [0, 1]) data.push({ 'fraction inspected': f, 'share of noisy rows found': f, order: 'random' });
    const chart = await lines(data, { x: 'fraction inspected', y: 'share of noisy rows found', series: 'order', title: 'Inspection: noisy rows found', xFormat: '.0%', yFormat: '.0%', dashed: ['random'] });
    inspection = `<p class="note">The store marks ${formatNumber(withNoisy[0]!.inspection!.noisy)} rows as noisy (their label says flipped, noisy, mislabelled or corrupt). Inspecting rows in each score's order finds them this fast; the dashed line is random order.</p><div class="charts"><figure class="chart">${chart}</figure></div>`;
  }
  return `<section id="curation"><h2>Curation</h2>
<p class="note">Dropping the examples of lowest <code>${escapeHtml(value.column.name)}</code> first: the sum of the dropped values is the predicted change of the target loss (negative = the loss would fall), in units of ${escapeHtml(unit)}${escapeHtml(fiveText)}. It is a first-order prediction from one run: it ignores how the other examples' training would change without them, so retrain to confirm. <code>npx inrun curate</code> writes the manifest.</p>
<div class="charts"><figure class="chart">${drop}</figure></div>${inspection}</section>`;
}

async function perStep(store: StoreReader, run: StoredRun, value: StoredColumn): Promise<string> {
  const series = await stepSeries(store, run, value);
  if (series === null) return `<section id="steps"><h2>Per-step view</h2><p>The store has no per-step scores for <code>${escapeHtml(value.name)}</code> (written with <code>steps: false</code>?).</p></section>`;
  const rawData: Datum[] = [];
  for (const b of series.buckets) for (const [source, v] of b.bySource) rawData.push({ step: b.step, value: v, source });
  // Running sums to the end of each bucket, every step included; beside them the target loss's own drop so far.
  const cumulative: Datum[] = [];
  const running = new Map<string, number>();
  let all = 0;
  let drop = 0;
  let dropKnown = true;
  for (const b of series.buckets) {
    const end = b.step + series.width;
    for (const [source, v] of b.bySource) running.set(source, (running.get(source) ?? 0) + v);
    all += b.total;
    for (const [source, v] of running) cumulative.push({ 'step (end of bucket)': end, 'value so far': v, source });
    cumulative.push({ 'step (end of bucket)': end, 'value so far': all, source: 'all sources' });
    if (b.lossDrop === null) dropKnown = false;
    else drop += b.lossDrop;
    if (dropKnown && b.lossDrop !== null) cumulative.push({ 'step (end of bucket)': end, 'value so far': drop, source: 'target loss drop' });
  }
  const rawChart = await lines(rawData, { x: 'step', y: 'value', series: 'source', title: `${value.name} per step bucket, by source`, yFormat: '.3~r' });
  const sumChart = await lines(cumulative, { x: 'step (end of bucket)', y: 'value so far', series: 'source', title: `${value.name} summed from the first step, by source`, yFormat: '.3~r', dashed: ['all sources', 'target loss drop'] });
  const last = series.buckets.at(-1);
  return `<section id="steps"><h2>Per-step view</h2>
<p class="note">Every step of the run, ${series.width === 1 ? 'one point per step' : `in ${series.buckets.length} buckets of ${series.width} consecutive steps (bucket = its first step)`}, through step ${last === undefined ? '?' : last.step + series.width - 1}. Early steps carry most raw value. The second chart sums the values from the first step on, by source; the dashed "all sources" line is their sum and "target loss drop" the drop of the target ${escapeHtml(series.target)}'s loss that was measured (the loss before each step, so it stops one bucket short of the end): where the two dashed lines meet, the first-order values account for the whole change.</p>
<div class="charts"><figure class="chart">${rawChart}</figure><figure class="chart">${sumChart}</figure></div></section>`;
}

