import type { ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import type { Logger } from 'pino';
import type { GraphQLContext } from '../graphql/context';
import type { Metrics } from './metrics';

/** One log line and one histogram sample per GraphQL request; unexpected errors logged in full with the request id. */
export function requestLogPlugin(logger: Logger, metrics: Metrics): ApolloServerPlugin<GraphQLContext> {
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
          metrics.graphqlDuration.observe({ operation: operationName ?? 'anonymous', status: codes.length ? 'error' : 'ok' }, durationMs / 1000);
          logger.info({ msg: 'graphql request', requestId: contextValue.requestId, operationName, status, durationMs: Math.round(durationMs), errorCodes: codes });
        },
      };
    },
  };
}
