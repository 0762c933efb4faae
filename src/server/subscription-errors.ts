import { GraphQLError, type GraphQLFormattedError } from 'graphql';

/** Apollo's `formatError` signature: `errorFormatter(...)` in errors.ts is the one the app passes. */
export type FormatError = (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;

/**
 * A GraphQLError whose JSON is what `formatError` makes of `error`. Apollo formats the errors of the responses it
 * sends itself; the subscription transports serialise their events themselves (graphql-sse writes `next` events, the
 * callback plugin POSTs `next` and `complete` to the router), so without this an ERP's own text or an internal message
 * would reach the client unmasked and without `extensions.code`. Locations and path are kept.
 */
export function publicError(error: unknown, formatError: FormatError): GraphQLError {
  const located =
    error instanceof GraphQLError
      ? error
      : new GraphQLError(error instanceof Error ? error.message : String(error), { originalError: error instanceof Error ? error : null });
  const formatted = formatError(located.toJSON(), located);
  return new GraphQLError(formatted.message, {
    nodes: located.nodes ?? null,
    source: located.source ?? null,
    positions: located.positions ?? null,
    path: located.path ?? null,
    extensions: formatted.extensions ?? null,
  });
}

/** A GraphQL error with a public code (`extensions.code`), for refusals made before anything runs. */
export function codedError(message: string, code: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { ...extensions, code } });
}
