/**
 * Every evaluation, one after another, each writing its section of docs/evaluation.md.
 *
 *   npm run eval     (or: npx tsx eval/index.ts [--only mislabel,mislabel-long,fidelity,removal,target-every,case-deletion,untrac,unlearn,lds] [--backend wasm])
 */
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { quietNodeBanner } from 'inrun/internal';
import { caseDeletion, caseDeletionMarkdown } from './case-deletion.js';
import { fidelity, fidelityMarkdown } from './fidelity.js';
import { lds, LDS_DEFAULTS, ldsMarkdown } from './lds.js';
import { mislabel, mislabelMarkdown } from './mislabel.js';
import { removal, removalMarkdown, writeRemovalPlot } from './removal.js';
import { targetEvery, targetEveryMarkdown } from './target-every.js';
import { untracEval, untracMarkdown } from './untrac.js';
import { unlearnEval, unlearnMarkdown } from './unlearn.js';
import { writeEvaluation } from './report.js';

// inrun's own command: tf.js' node-backend banner (with --backend cpu) is noise here.
quietNodeBanner();

const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: 'mislabel,mislabel-long,fidelity,removal,target-every,case-deletion,untrac,unlearn,lds' },
    backend: { type: 'string', default: 'wasm' },
    out: { type: 'string', default: 'docs/evaluation.md' },
  },
});
const backend = args.backend;
const only = new Set(args.only.split(','));
const timed = async (name: string, body: () => Promise<string>) => {
  if (!only.has(name)) return;
  const started = Date.now();
  console.log(`${name}...`);
  const markdown = await body();
  writeEvaluation(args.out, name, markdown);
  console.log(`${name}: ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
};

await timed('mislabel', async () => {
  const options = { epochs: 3, backend };
  return mislabelMarkdown(await mislabel(options), options);
});
await timed('mislabel-long', async () => {
  const options = { epochs: 10, backend, long: true };
  return mislabelMarkdown(await mislabel(options), options);
});
await timed('fidelity', async () => {
  const options = { backend, batch: 64 };
  const started = performance.now();
  const rows = await fidelity(options);
  return fidelityMarkdown(rows, options, (performance.now() - started) / 1000);
});
await timed('removal', async () => {
  const options = { backend, epochs: 3 };
  const result = await removal(options);
  const svg = writeRemovalPlot(result, dirname(args.out));
  return removalMarkdown(result, options, svg);
});
await timed('target-every', async () => {
  const options = { backend, epochs: 3, every: [4, 16, 64] };
  return targetEveryMarkdown(await targetEvery(options), options);
});
await timed('case-deletion', async () => {
  const options = { backend, train: 2000, queries: 20, epochs: 2, ks: [10, 20, 50] };
  return caseDeletionMarkdown(await caseDeletion(options), options);
});
await timed('untrac', async () => {
  const options = { backend, seeds: 3, perSource: 200 };
  return untracMarkdown(await untracEval(options), options);
});
await timed('unlearn', async () => {
  // Its own backends: wasm for the dense and text models, cpu for the digits CNN.
  return unlearnMarkdown(await unlearnEval());
});
await timed('lds', async () => {
  // The sizes (5,000 / 500 / 50 subsets); the retrained margins are cached under .cache/lds/.
  const options = { ...LDS_DEFAULTS, backend };
  return ldsMarkdown(await lds(options), options);
});
