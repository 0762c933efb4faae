import { ApolloServerErrorCode, unwrapResolverError } from '@apollo/server/errors';
import type { GraphQLFormattedError } from 'graphql';
import { classifyError } from '../graphql/errors';

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
 * Every error leaves through here, translated by the GraphQL layer's one classifier (graphql/errors.ts) from the error
 * that was thrown (a resolver's, unwrapped from graphql-js's located error). Anything it does not know is a bug or an
 * internal failure: its message and details stay in the log (with the request id) and the client sees a generic error.
 */
export function errorFormatter(options: { hideSuggestions: boolean }) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const { code, message, extensions, expected } = classifyError(unwrapResolverError(error));
    if (!expected) {
      return {
        message: 'Internal server error',
        ...(formatted.locations ? { locations: formatted.locations } : {}),
        ...(formatted.path ? { path: formatted.path } : {}),
        extensions: { code: ApolloServerErrorCode.INTERNAL_SERVER_ERROR },
      };
    }
    const shown = clipMessage(options.hideSuggestions ? message.replace(SUGGESTION, '') : message);
    return { ...formatted, message: shown, extensions: { ...extensions, code } };
  };
}

/** The development formatter (suggestions kept), for callers that need a plain function. */
export const formatError = errorFormatter({ hideSuggestions: false });
