// The run info of the stored-run fixtures, alone (no tf.js): child processes that only open sinks load it fast.
import type { RunInfo } from '@inrun/store';

export const COLUMNS = ['shapley1:val', 'tracin_self', 'tracin_we:val'] as const;
export const HOSTILE = `<script>window.__x=1</script><img src=x onerror="window.__y=1">`;

/** A RunInfo as attach() would write it, for a model nobody trained. */
export function runInfo(runId: string, params = 1000): RunInfo {
  return {
    runId,
    startedAt: '2026-01-01T00:00:00.000Z',
    inrunVersion: '0.1.0',
    tfjsVersion: '4.22.0',
    backend: 'cpu',
    model: { name: 'synthetic', className: 'Sequential', params },
    optimizer: { className: 'SGD', attribution: 'exact' },
    lossReduction: 'mean',
    methods: ['shapley1', 'tracin_self', 'tracin_we'],
    columns: [
      { name: 'shapley1:val', method: 'shapley1', target: 'val' },
      { name: 'tracin_self', method: 'tracin_self', target: null },
      { name: 'tracin_we:val', method: 'tracin_we', target: 'val' },
    ],
    targets: [{ name: 'val', rows: 64 }],
    layers: { covered: [{ name: 'dense_1', kind: 'dense', params: params - 100, path: 'pairwise' }], skipped: [], coveredParams: params - 100, trainableParams: params },
    targetEvery: 1,
    targetPass: 'separate',
    hvp: null,
    seeds: [1],
    meta: { note: HOSTILE },
  };
}
