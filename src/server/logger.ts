import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Structured logs. Secrets are redacted by path as a second line of defence: the code never puts a password or a
 * session token into a log object in the first place.
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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'zb-aftersale-subgraph' } };
  return destination ? pino(options, destination) : pino(options);
}
