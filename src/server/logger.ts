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
  /** Extra fields for every line (e.g. the active trace id), computed per line. */
  mixin?: () => Record<string, unknown>;
}

export function createLogger(level: string, destination?: DestinationStream, settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { service: 'zb-aftersale-subgraph' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    ...(settings.mixin ? { mixin: settings.mixin } : {}),
  };
  if (destination) return pino(options, destination);
  if (settings.pretty) return pino(options, pino.transport({ target: 'pino-pretty', options: { translateTime: 'SYS:standard', ignore: 'pid,hostname,service' } }));
  return pino(options);
}
