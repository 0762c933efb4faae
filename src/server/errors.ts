import type { GraphQLFormattedError } from 'graphql';
import { ErrorCode } from '../graphql/errors';

/** Codes that are safe to show as they are: ours, and Apollo's own request errors. */
const PUBLIC_CODES = new Set<string>([
  ...Object.values(ErrorCode).filter((c) => c !== ErrorCode.InternalServerError),
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
]);

/**
 * Anything without a public code is a bug or an internal failure: its message and details stay in the log (with the
 * request id) and the client sees a generic error.
 */
export function formatError(formatted: GraphQLFormattedError, _error: unknown): GraphQLFormattedError {
  const code = typeof formatted.extensions?.code === 'string' ? formatted.extensions.code : undefined;
  if (code && PUBLIC_CODES.has(code)) {
    const { stacktrace: _stack, ...extensions } = formatted.extensions ?? {};
    return { ...formatted, extensions };
  }
  return {
    message: 'Internal server error',
    ...(formatted.locations ? { locations: formatted.locations } : {}),
    ...(formatted.path ? { path: formatted.path } : {}),
    extensions: { code: ErrorCode.InternalServerError },
  };
}
