import type { Logger } from 'pino';

/**
 * Tracing is configured only by the standard OTEL_* variables, read by the OpenTelemetry SDK itself (tracing-sdk.ts).
 * This file decides only whether to load the SDK at all: with tracing off it is never required, and the code's spans
 * (server/tracing-plugin.ts, erp/layers/trace.ts) go to the API's no-op tracer.
 */
export interface Tracing {
  /** Exports the spans still buffered, then stops. */
  shutdown(): Promise<void>;
  /** For the start-up log line: the exporters and the OTLP protocol in force (never the endpoint: a URL can hold credentials). */
  readonly exporters: string;
  readonly protocol: string;
}

const names = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '' && v !== 'null');

const isSet = (value: string | undefined): boolean => (value ?? '').trim() !== '';

/**
 * Whether the environment asks for traces: OTEL_TRACES_EXPORTER names an exporter (`none` first means no), or an OTLP
 * endpoint is given (the exporter is then OTLP, the SDK's default); never with OTEL_SDK_DISABLED=true. The same reading
 * as the SDK's own (sdk-node's getSpanProcessorsFromEnv), so the SDK is loaded exactly when it would export.
 */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  const exporters = names(env.OTEL_TRACES_EXPORTER);
  if (exporters.length > 0) return exporters[0] !== 'none';
  return isSet(env.OTEL_EXPORTER_OTLP_ENDPOINT) || isSet(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * Starts the SDK when the environment asks for traces (before the app starts, so its first spans are exported).
 * `env` is the process's environment: the SDK reads process.env itself, this only decides.
 */
export function startTracing(env: NodeJS.ProcessEnv, logger: Logger): Tracing | undefined {
  if (!tracingRequested(env)) return undefined;
  // Required here and nowhere else: loading the SDK costs about a second and 15-20 MB of heap, which a process with
  // tracing off never pays.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sdk = require('./tracing-sdk') as typeof import('./tracing-sdk');
  return sdk.startSdk(env, logger);
}
