/**
 * Live monitoring: the demo's spam filter, with inrun's metrics exported through the app's own
 * OpenTelemetry SDK: a Prometheus endpoint on 127.0.0.1, and OTLP/HTTP when an endpoint is set in
 * the standard environment variables (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT).
 *
 *   npx tsx examples/live-monitoring.ts [--port 9464] [--epochs 3] [--limit N] [--keep-alive]
 *   curl -s http://127.0.0.1:9464/metrics | grep ^inrun
 *
 * Grafana: import docs/grafana-dashboard.json (docs/telemetry.md).
 */
import { parseArgs } from 'node:util';
import { metrics } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attach, useFastEmbeddingGradient } from 'inrun';
import { spamClassifier, splitTensors } from './spam-classifier.js';
import { spamData } from './spam-data.js';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '9464' },
    epochs: { type: 'string', default: '3' },
    limit: { type: 'string' }, // emails read from the corpus (the first 1,000 are test and validation)
    'keep-alive': { type: 'boolean', default: false },
  },
});

// The app owns the SDK: inrun only uses @opentelemetry/api.
const readers: MetricReader[] = [new PrometheusExporter({ host: '127.0.0.1', port: Number(args.port) })];
if (process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] ?? process.env['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT']) {
  readers.push(new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: 5000 }));
}
const provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': 'spam-filter-training' }), readers });
metrics.setGlobalMeterProvider(provider);
console.log(`Prometheus metrics on http://127.0.0.1:${args.port}/metrics${readers.length > 1 ? ', and OTLP/HTTP export' : ''}`);

await tf.setBackend('wasm');
useFastEmbeddingGradient();
const data = spamData(args.limit === undefined ? {} : { limit: Number(args.limit) });
const train = splitTensors(data.train, data.seqLen);
const model = spamClassifier({ vocabSize: data.vocabulary.length, seqLen: data.seqLen });

const run = attach(model, {
  targets: { val: splitTensors(data.val, data.seqLen, [...Array(128).keys()]) },
  examples: data.train.emails.map((e) => ({ id: e.id, source: e.group })),
  // Not `job`: Prometheus names its scrape job with that label.
  metrics: { attributes: { experiment: 'spam-filter' } },
});
await run.fit(train.xs, train.ys, {
  ids: data.train.emails.map((e) => e.id),
  epochs: Number(args.epochs),
  batchSize: 32,
  verbose: 0,
  callbacks: { onEpochEnd: (epoch, logs) => console.log(`epoch ${epoch + 1}: loss ${(logs?.['loss'] ?? 0).toFixed(3)}`) },
});
await run.close();
if (args['keep-alive']) {
  // The Prometheus exporter unrefs its server, so nothing would keep the process alive: a timer does.
  const alive = setInterval(() => undefined, 1 << 30);
  process.once('SIGINT', () => {
    clearInterval(alive);
    void provider.shutdown().then(() => process.exit(0));
  });
  console.log('Training done; still serving metrics (Ctrl-C to stop).');
} else {
  await provider.shutdown();
}
