import { isSpanContextValid, trace } from '@opentelemetry/api';
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/**
 * Structured logs: JSON lines with ISO timestamps and level names, for people and log pipelines alike. Secrets are
 * redacted by path as a second line of defence: the code never puts a password or a session token into a log object
 * in the first place.
 */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'session',
  '*.session',
  'token',
  '*.token',
  'headers["x-zb-session"]',
  'req.headers["x-zb-session"]',
  'req.headers.authorization',
  'headers.authorization',
];

export interface LoggerSettings {
  /** Human-readable lines (pino-pretty) instead of JSON: for local runs (ZB_LOG_PRETTY). */
  pretty?: boolean;
  /** Extra fields for every line, computed per line: the active trace's ids (`traceFields`) unless given. */
  mixin?: () => Record<string, unknown>;
}

/**
 * The active trace's ids, for every line written while a span is active (a GraphQL operation, an ERP call): the names
 * OpenTelemetry's log correlation uses. Nothing while tracing is off (the API's no-op context has no span).
 */
export function traceFields(): Record<string, unknown> {
  // A fresh object every time, never a shared one: pino merges the line's own fields into what the mixin returns.
  const span = trace.getActiveSpan();
  if (!span) return {};
  const ids = span.spanContext();
  if (!isSpanContextValid(ids)) return {};
  return { trace_id: ids.traceId, span_id: ids.spanId, trace_flags: `0${ids.traceFlags.toString(16)}`.slice(-2) };
}

export function createLogger(level: string, destination?: DestinationStream, settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { service: 'zb-aftersale-subgraph' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin: settings.mixin ?? traceFields,
  };
  if (destination) return pino(options, destination);
  if (settings.pretty) return pino(options, pino.transport({ target: 'pino-pretty', options: { translateTime: 'SYS:standard', ignore: 'pid,hostname,service' } }));
  return pino(options);
}
