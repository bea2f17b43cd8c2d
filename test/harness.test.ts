import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { caseDeletion, caseDeletionMarkdown } from '../eval/case-deletion.js';
import { fidelity } from '../eval/fidelity.js';
import { mislabel, mislabelMarkdown } from '../eval/mislabel.js';
import { removal } from '../eval/removal.js';
import { targetEvery } from '../eval/target-every.js';
import { untracEval, untracMarkdown } from '../eval/untrac.js';
import { unlearnEval, unlearnMarkdown } from '../eval/unlearn.js';

// The benchmark and evaluation harness on tiny configurations: it runs, and what it reports is sane.
// The real numbers come from `npm run bench` and `npm run eval` (docs/benchmarks.md, docs/evaluation.md).

describe('evaluation harness (tiny configurations)', () => {
  it('mislabel: both update choices train identically; every ranking gives an AUROC', async () => {
    const options = { epochs: 1, backend: 'cpu', limit: 300 };
    const r = await mislabel(options);
    // Attribution must not change training: the SGD-proxy and optimizer-aware runs end with the same model.
    expect(r.sameTraining).toBe(true);
    expect(r.rankers.length).toBe(16);
    for (const k of r.rankers) {
      expect(k.auroc).toBeGreaterThanOrEqual(0);
      expect(k.auroc).toBeLessThanOrEqual(1);
    }
    expect(mislabelMarkdown(r, options)).toContain('| highest tracin_self |');
    const long = await mislabel({ ...options, long: true });
    expect(long.rankers.map((k) => k.name)).toContain('lowest shapley1:val (optimizer-aware)');
  });

  it('fidelity: at the smallest learning rate both orders rank like leave-one-out and add up to the real change', async () => {
    const rows = await fidelity({ backend: 'cpu', batch: 8, limit: 200 });
    expect(rows.map((r) => r.model)).toEqual(['tabular MLP', 'text classifier', 'digits CNN'].flatMap((name) => [name, name, name]));
    // The smallest learning rate of the MLP and of the CNN (whose conv layers the conv kind covers).
    for (const small of [rows[0]!, rows[6]!]) {
      expect(Math.abs(small.predicted.first - small.predicted.real)).toBeLessThan(0.05 * Math.abs(small.predicted.real));
      expect(small.first).toBeGreaterThan(0.8);
      expect(small.second).toBeGreaterThan(0.8);
    }
  });

  it('removal: retrains on all data, without negative or lowest values (both updates) and without random emails of each size', async () => {
    const r = await removal({ backend: 'cpu', epochs: 1, limit: 300, every: 2, randomSeeds: 1 });
    const [all, ...dropped] = r.curves;
    const byValue = dropped.filter((c) => !c.name.includes('random'));
    const random = dropped.filter((c) => c.name.includes('random'));
    expect(byValue.map((c) => c.name.replace(/\d+ /, ''))).toEqual([
      'without the negative-value emails (SGD proxy)',
      'without the lowest-value emails (SGD proxy)',
      'without the negative-value emails (optimizer-aware)',
      'without the lowest-value emails (optimizer-aware)',
    ]);
    // Every value drop has a random drop of the same size to compare with, and the 10% drops are 10%.
    for (const c of byValue) expect(random.map((x) => x.kept)).toContain(c.kept);
    expect(all!.kept - byValue[1]!.kept).toBe(Math.round(all!.kept * 0.1));
    for (const c of dropped) {
      expect(c.flippedDropped).toBeLessThanOrEqual(all!.kept - c.kept);
      expect(c.spamDropped).toBeGreaterThanOrEqual(0);
      expect(c.spamDropped).toBeLessThanOrEqual(1);
    }
    expect(r.curves[0]!.points.at(-1)![0]).toBe(r.steps);
    expect(Number.isFinite(r.level)).toBe(true);
  });

  it('targetEvery: the exact run correlates perfectly with itself, and a refresh every 4 steps still ranks alike', async () => {
    const rows = await targetEvery({ backend: 'cpu', epochs: 1, every: [4], limit: 300 });
    expect(rows.map((r) => r.every)).toEqual([1, 4]);
    expect(rows[0]!.spearman).toBe(1);
    expect(rows[1]!.spearman).toBeGreaterThan(0.5);
  });

  it('case deletion: one retrain per query, method, direction and k, plus random deletions', async () => {
    const options = { backend: 'cpu', train: 64, queries: 2, epochs: 1, ks: [2] };
    const r = await caseDeletion(options);
    expect(r.retrains).toBe(1 + 2 * 2 * 2 + 2);
    expect(r.rows.map((x) => `${x.method}/${x.deleted}`)).toEqual([
      'TracIn-WE (embedding layer)/proponents',
      'TracIn-WE (embedding layer)/opponents',
      'TracIn, last layer/proponents',
      'TracIn, last layer/opponents',
      'random emails/random',
    ]);
    expect(caseDeletionMarkdown(r, options)).toContain('TracIn-WE / last layer');
  });

  it('untrac: leave-source-out truth over seeds with its ceiling, and every method scored against it, on both models', async () => {
    const options = { backend: 'cpu', seeds: 2, perSource: 8, cap: 10, steps: [4, 4] as const, targetRows: 4, constantTrap: false, ascentRates: [1e-3], checkpoints: 2, vocabSize: 200, lm: { perSource: 4, steps: 3 } };
    const r = await untracEval(options);
    expect(r.settings.map((s) => s.name)).toEqual(['text classifier, equal sizes', 'text classifier, unequal sizes', 'tiny transformer, synthetic corpora']);
    const methods = ['UnTrac', 'UnTrac-Inv', 'UnTrac', 'UnTrac-Inv', 'in-run shapley1 summed per source', 'in-run shapley1 summed per source', 'TracIn from 2 checkpoints, summed per source', 'GradDot'];
    for (const s of r.settings) {
      const [targets, sources] = s.name.startsWith('text') ? [5, 5] : [2, 4];
      expect(s.truth.length).toBe(targets);
      expect(s.truth.every((row) => row.length === sources && row.every(Number.isFinite))).toBe(true);
      expect(Number.isFinite(s.ceiling.pearson)).toBe(true);
      expect(s.methods.map((m) => m.name.replace(/ \(.*/, ''))).toEqual(s.name.startsWith('text') ? ['class only', ...methods] : methods);
      for (const m of s.methods) expect(Math.abs(m.pearson)).toBeLessThanOrEqual(1);
    }
    // Within-class Pearson where sources have classes (the classifier), none where they do not.
    expect(r.settings[0]!.methods.slice(1).every((m) => Number.isFinite(m.withinClass))).toBe(true);
    expect(r.settings[2]!.methods.every((m) => Number.isNaN(m.withinClass))).toBe(true);
    expect(r.settings[0]!.sizes['spam-1']).toBe(8);
    expect(untracMarkdown(r, options)).toContain('| within-class Pearson |');
  });
});

describe('unlearning evaluation (tiny configuration)', () => {
  it('unlearn: both data-level scenarios against retraining with defaults and tuned rows, and the knowledge-level Q-U table', async () => {
    const r = await unlearnEval({ tasks: ['mlp', 'knowledge'], seeds: [1], sizes: { digitRows: 300, epochs: 1, textLimit: 400 } });
    expect(r.data.map((s) => [s.task, s.scenario, s.forgetRows])).toEqual([
      ['mlp', 'random 10%', 30],
      ['mlp', 'class', 30],
    ]);
    for (const s of r.data) {
      expect(s.cells.map((c) => c.method)).toEqual([
        'original',
        'retrained',
        'defaults: rfa-lora',
        'defaults: gradient-ascent',
        'defaults: fine-tune',
        'tuned: rfa-lora, rank 2, lr 1e-2, retainWeight 0.01, 5 epochs',
        'tuned: rfa-lora calibrated, lr 1e-2',
      ]);
      // Every default run is calibrated and says where it stopped.
      for (const c of s.cells.slice(2, 5)) expect(c.stopped).toMatch(/^(calibrated|overshot|guard|epochs|already) @\d+, kept \d+$/);
    }
    // Retraining without a class never predicts it.
    expect(r.data[1]!.cells[1]!.forget).toBeLessThan(0.1);
    expect(r.knowledge[0]!.rows.map((x) => x.method)).toEqual([
      'defaults: hinge-kl',
      'defaults: gradient-ascent',
      'tuned: hinge-kl, LoRA adapters, lr 1e-2, batch 16, 20 epochs',
      'tuned: hinge-kl + 256 retain rows, batch 16, 20 epochs',
    ]);
    for (const x of r.knowledge[0]!.rows) {
      expect(x.qu).toBeGreaterThanOrEqual(0);
      expect(x.qu).toBeLessThanOrEqual(1);
    }
    const markdown = unlearnMarkdown(r);
    expect(markdown).toContain('### Defaults only');
    expect(markdown).toContain('**MNIST dense net, forget digit 7**');
    expect(markdown).toContain('| defaults: hinge-kl |');
  });
});

describe('benchmark scripts (quick mode)', () => {
  const run = (script: string, args: string[]) => execFileSync(process.execPath, ['--import', 'tsx', script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  it('step time, memory and sketches write their sections', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'inrun-bench-')), 'benchmarks.md');
    run('bench/step-time.ts', ['--quick', '--models', 'tabular', '--backends', 'cpu', '--out', out]);
    run('bench/memory.ts', ['--quick', '--steps', '2', '--out', out]);
    run('bench/sketch.ts', ['--backend', 'cpu', '--train', '40', '--queries', '3', '--seeds', '1', '--sizes', '4', '--models', 'tabular', '--out', out]);
    const doc = readFileSync(out, 'utf8');
    expect(doc).toContain('<!-- step-time -->');
    expect(doc).toMatch(/\| cpu \| 16 \| 1 \|/);
    expect(doc).toContain('<!-- sketch -->');
    // Peak RSS per mode: a positive number of megabytes in each of the three columns.
    expect(doc).toMatch(/\| tabular MLP 20-64-64-2 \| 16 \| 1 \| - \| [1-9]\d* \| [1-9]\d* \([+-]\d+\) \| [1-9]\d* \([+-]\d+\) \|/);
    expect(readFileSync(join(out, '..', 'overhead.svg'), 'utf8')).toContain('<svg');
  });
});
