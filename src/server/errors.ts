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
 * graphql-js suggests names in many wordings ("Did you mean "x"?", "Did you mean the enum value "PENDING"?", in
 * validation and in variable coercion alike): in production every one of them is cut, since they map the schema for
 * whoever probes it with typos.
 */
const SUGGESTION = /\s*Did you mean [^?]*\?/g;

/** Longest message echoed to a client: a message that quotes client input (a 60 KB id) must not grow with it. */
const MAX_MESSAGE = 500;

function clipMessage(message: string): string {
  return message.length <= MAX_MESSAGE ? message : `${message.slice(0, MAX_MESSAGE)}...`;
}

/**
 * Anything without a public code is a bug or an internal failure: its message and details stay in the log (with the
 * request id) and the client sees a generic error.
 */
export function errorFormatter(options: { hideSuggestions: boolean }) {
  return (formatted: GraphQLFormattedError, _error: unknown): GraphQLFormattedError => {
    const code = typeof formatted.extensions?.code === 'string' ? formatted.extensions.code : undefined;
    if (code && PUBLIC_CODES.has(code)) {
      const { stacktrace: _stack, ...extensions } = formatted.extensions ?? {};
      const message = clipMessage(options.hideSuggestions ? formatted.message.replace(SUGGESTION, '') : formatted.message);
      return { ...formatted, message, extensions };
    }
    return {
      message: 'Internal server error',
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: { code: ErrorCode.InternalServerError },
    };
  };
}

/** The development formatter (suggestions kept), for callers that need a plain function. */
export const formatError = errorFormatter({ hideSuggestions: false });
