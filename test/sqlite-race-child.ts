// Child process of hostile-sqlite-race.test.ts: creates new SQLite stores at agreed moments (the sibling child creates the same ones), prints each outcome as JSON.
import { join } from 'node:path';
import { sqliteSink } from '@inrun/store';
import { runInfo } from './run-info-fixture.js';

const [dir, countArg, startArg, who] = process.argv.slice(2) as [string, string, string, string];
const count = Number(countArg);
const start = Number(startArg);
// Slots far enough apart that each one starts both children together, whatever the other did before.
const SLOT_MS = 150;

const outcomes: string[] = [];
for (let i = 0; i < count; i++) {
  const at = start + i * SLOT_MS;
  while (Date.now() < at) {
    // Spin the last milliseconds: a timer's lateness would spread the two children apart.
    if (at - Date.now() > 5) await new Promise((resolve) => setTimeout(resolve, at - Date.now() - 5));
  }
  const sink = sqliteSink(join(dir, `store-${i}.sqlite`));
  try {
    await sink.open(runInfo(`run-${who}`));
    outcomes.push('ok');
  } catch (e) {
    outcomes.push(e instanceof Error ? `${e.message} (${String((e as { code?: unknown }).code)})` : String(e));
  } finally {
    await sink.close();
  }
}
process.stdout.write(JSON.stringify(outcomes));
