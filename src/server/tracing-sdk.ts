import { diag, DiagLogLevel, type DiagLogger } from '@opentelemetry/api';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { Logger } from 'pino';
import { clip } from './log-fields';
import type { Tracing } from './tracing';

/**
 * The OpenTelemetry SDK, loaded by tracing.ts only when the environment asks for traces. NodeSDK reads the standard
 * variables itself (sdk-node 0.223: sdk.js, utils.js, create-from-env.js):
 * - OTEL_TRACES_EXPORTER: `otlp` (default), `console`, `zipkin`, `none`;
 * - OTEL_EXPORTER_OTLP_TRACES_PROTOCOL / OTEL_EXPORTER_OTLP_PROTOCOL: `http/protobuf` (default), `http/json`, `grpc`;
 * - OTEL_EXPORTER_OTLP_ENDPOINT (+ `/v1/traces`) or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, `..._HEADERS`, `..._TIMEOUT`;
 * - OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES (the env resource detector), OTEL_NODE_RESOURCE_DETECTORS;
 * - OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_EXPORT_TIMEOUT;
 * - OTEL_TRACES_SAMPLER (+ `_ARG`), OTEL_PROPAGATORS (default W3C `tracecontext,baggage`), span limits, OTEL_LOG_LEVEL.
 */
const SERVICE_NAME = 'zb-aftersale-subgraph';

/** The SDK's own trouble (a collector that refuses, a bad variable) as log lines, not as console output nobody reads. */
function diagToLog(logger: Logger): DiagLogger {
  const line = (message: string, args: unknown[]) => ({ msg: `opentelemetry: ${clip(message)}`, detail: args.length ? clip(args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ')) : undefined });
  return {
    error: (message, ...args) => logger.warn(line(message, args)),
    warn: (message, ...args) => logger.warn(line(message, args)),
    info: (message, ...args) => logger.debug(line(message, args)),
    debug: () => undefined,
    verbose: () => undefined,
  };
}

export function startSdk(env: NodeJS.ProcessEnv, logger: Logger): Tracing {
  // OTEL_LOG_LEVEL makes the SDK install its console logger instead (its documented switch for debugging it).
  if (!env.OTEL_LOG_LEVEL) diag.setLogger(diagToLog(logger), DiagLogLevel.WARN);
  const sdk = new NodeSDK({
    // Our name unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES give one: detected attributes merge over this.
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': SERVICE_NAME })),
    // Traces only. Without these the SDK would also start OTLP metric and log exporters from the same variables;
    // metrics stay on /metrics (Prometheus), logs on stdout.
    metricReaders: [],
    logRecordProcessors: [],
    // No monkey-patching instrumentations: the spans are made by the code itself (server/tracing-plugin.ts,
    // erp/layers/trace.ts), so they are the same in every runtime and under jest, and carry only what we choose.
    instrumentations: [],
  });
  sdk.start();
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? '').trim() || 'http/protobuf';
  return {
    exporters: (env.OTEL_TRACES_EXPORTER ?? '').trim() || 'otlp',
    protocol,
    shutdown: () => sdk.shutdown(),
  };
}
