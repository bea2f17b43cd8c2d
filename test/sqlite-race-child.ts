// Child process of hostile-sqlite-race.test.ts: creates new SQLite stores at agreed moments (the sibling child creates the same ones), prints each outcome as JSON.
import { join } from 'node:path';
import { sqliteSink, type RunInfo } from '@inrun/store';

const [dir, countArg, startArg, who] = process.argv.slice(2) as [string, string, string, string];
const count = Number(countArg);
const start = Number(startArg);
// Slots far enough apart that each one starts both children together, whatever the other did before.
const SLOT_MS = 150;

function info(runId: string): RunInfo {
  return {
    runId,
    startedAt: '2026-01-01T00:00:00.000Z',
    inrunVersion: '0.1.0',
    tfjsVersion: '4.22.0',
    backend: 'cpu',
    model: { name: 'race', className: 'Sequential', params: 10 },
    optimizer: { className: 'SGD', attribution: 'exact' },
    lossReduction: 'mean',
    methods: ['tracin_self'],
    columns: [{ name: 'tracin_self', method: 'tracin_self', target: null }],
    targets: [],
    layers: { covered: [], skipped: [], coveredParams: 0, trainableParams: 10 },
    targetEvery: 1,
    targetPass: 'separate',
    hvp: null,
    seeds: [1],
    meta: {},
  };
}

const outcomes: string[] = [];
for (let i = 0; i < count; i++) {
  const at = start + i * SLOT_MS;
  while (Date.now() < at) {
    // Spin the last milliseconds: a timer's lateness would spread the two children apart.
    if (at - Date.now() > 5) await new Promise((resolve) => setTimeout(resolve, at - Date.now() - 5));
  }
  const sink = sqliteSink(join(dir, `store-${i}.sqlite`));
  try {
    await sink.open(info(`run-${who}`));
    outcomes.push('ok');
  } catch (e) {
    outcomes.push(e instanceof Error ? `${e.message} (${String((e as { code?: unknown }).code)})` : String(e));
  } finally {
    await sink.close();
  }
}
process.stdout.write(JSON.stringify(outcomes));
