import type { ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import type { Logger } from 'pino';
import type { GraphQLContext } from '../graphql/context';
import type { Metrics } from './metrics';

/** Distinct operation names kept as metric labels; later names share `other`. */
export const MAX_OPERATION_LABELS = 100;

/**
 * Operation names come from clients, and every distinct label value is a series the registry keeps for good: a
 * client sending a fresh name per request would grow memory without end. The first names seen keep their own series.
 */
function operationLabeler(max: number): (name: string | null | undefined) => string {
  const seen = new Set<string>();
  return (name) => {
    if (!name) return 'anonymous';
    if (seen.has(name)) return name;
    if (seen.size >= max) return 'other';
    seen.add(name);
    return name;
  };
}

/** One log line and one histogram sample per GraphQL request; unexpected errors logged in full with the request id. */
export function requestLogPlugin(logger: Logger, metrics: Metrics): ApolloServerPlugin<GraphQLContext> {
  const operationLabel = operationLabeler(MAX_OPERATION_LABELS);
  return {
    async requestDidStart({ contextValue }) {
      const started = performance.now();
      return {
        async didEncounterErrors({ errors }) {
          for (const error of errors) {
            const code = error.extensions?.code;
            if (code === undefined || code === 'INTERNAL_SERVER_ERROR') {
              const original = unwrapResolverError(error);
              logger.error({ msg: 'unexpected error', requestId: contextValue.requestId, err: original, path: error.path });
            }
          }
        },
        async willSendResponse({ response, operationName, errors }) {
          const durationMs = performance.now() - started;
          const codes = [...new Set((errors ?? []).map((e) => String(e.extensions?.code ?? 'INTERNAL_SERVER_ERROR')))];
          const status = response.http.status ?? 200;
          metrics.graphqlDuration.observe({ operation: operationLabel(operationName), status: codes.length ? 'error' : 'ok' }, durationMs / 1000);
          logger.info({ msg: 'graphql request', requestId: contextValue.requestId, operationName, status, durationMs: Math.round(durationMs), errorCodes: codes });
        },
      };
    },
  };
}
