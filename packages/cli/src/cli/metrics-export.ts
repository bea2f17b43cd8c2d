// A Prometheus endpoint for `inrun worker --metrics-port`: the OpenTelemetry SDK and exporter, loaded only when asked for (optional peer dependencies).
import type { MeterProvider } from '@opentelemetry/api';
import { InrunError } from '@inrun/store';

/** A meter provider whose metrics are served at `http://<host>:<port>/metrics`; `close()` stops the server. */
export interface PrometheusEndpoint {
  readonly meterProvider: MeterProvider;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves OpenTelemetry metrics for Prometheus to scrape. The library itself uses `@opentelemetry/api`
 * only (docs/telemetry.md); the worker command is an app, so it may own an SDK, but only when the flag
 * is given: the SDK and the exporter are optional peer dependencies, loaded here on demand.
 */
export async function prometheusEndpoint(port: number, host: string): Promise<PrometheusEndpoint> {
  const [sdk, prometheus] = await Promise.all([import('@opentelemetry/sdk-metrics'), import('@opentelemetry/exporter-prometheus')]).catch(() => {
    throw new InrunError('--metrics-port needs @opentelemetry/sdk-metrics and @opentelemetry/exporter-prometheus: npm install them beside inrun', { code: 'invalid_option', field: '--metrics-port' });
  });
  const exporter = await new Promise<InstanceType<typeof prometheus.PrometheusExporter>>((resolve, reject) => {
    const e: InstanceType<typeof prometheus.PrometheusExporter> = new prometheus.PrometheusExporter({ host, port }, (error) => (error ? reject(new InrunError(`cannot serve metrics on ${host}:${port}: ${error.message}`, { code: 'invalid_option', field: '--metrics-port' })) : resolve(e)));
  });
  const meterProvider = new sdk.MeterProvider({ readers: [exporter] });
  return { meterProvider, url: `http://${host}:${port}/metrics`, close: () => meterProvider.shutdown() };
}
