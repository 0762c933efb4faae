import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import { ApolloServerErrorCode, unwrapResolverError } from '@apollo/server/errors';
import type { Logger } from 'pino';
import type { GraphQLContext } from '../graphql/context';
import { classifyError } from '../graphql/errors';
import { clip } from './log-fields';
import type { Metrics } from './metrics';

/** Distinct operation names kept as metric labels; later names share `other`. */
export const MAX_OPERATION_LABELS = 100;
/** Longest operation name kept as a label value; longer names count under `other`. */
export const MAX_OPERATION_LABEL_LENGTH = 64;
/** Unexpected errors logged in full per request; the rest are counted in one line. */
export const MAX_ERRORS_LOGGED = 5;
/** Errors sent in one response; the rest are summed up in one last error. */
export const MAX_RESPONSE_ERRORS = 100;

/**
 * Operation names come from clients, and every distinct label value is a series the registry keeps for good: a
 * client sending a fresh (or a 95 KB) name per request would grow memory without end. The first short names seen keep
 * their own series; the registry then holds at most 100 x 64 characters of names.
 */
export function operationLabeler(max: number, maxLength = MAX_OPERATION_LABEL_LENGTH): (name: string | null | undefined) => string {
  const seen = new Set<string>();
  return (name) => {
    if (!name) return 'anonymous';
    if (seen.has(name)) return name;
    if (seen.size >= max || name.length > maxLength) return 'other';
    seen.add(name);
    return name;
  };
}

const NO_CODES: readonly string[] = [];

/**
 * One log line and one histogram sample per GraphQL request; unexpected errors logged in full with the request id.
 * "Unexpected" and the codes logged are the classifier's (graphql/errors.ts), as in the response.
 */
export function requestLogPlugin(logger: Logger, metrics: Metrics): ApolloServerPlugin<GraphQLContext> {
  const operationLabel = operationLabeler(MAX_OPERATION_LABELS);
  return {
    async requestDidStart({ contextValue }) {
      const started = performance.now();
      return {
        async didEncounterErrors({ errors }) {
          // A request can carry thousands of errors (one per representation or list item): log a few, count the rest.
          let logged = 0;
          let unlogged = 0;
          for (const error of errors) {
            const original = unwrapResolverError(error);
            if (classifyError(original).expected) continue;
            if (logged >= MAX_ERRORS_LOGGED) {
              unlogged++;
              continue;
            }
            logged++;
            logger.error({ msg: 'unexpected error', requestId: contextValue.requestId, err: original, path: error.path?.slice(0, 8) });
          }
          if (unlogged > 0) logger.error({ msg: 'more unexpected errors in this request', requestId: contextValue.requestId, count: unlogged });
        },
        async willSendResponse({ response, operationName, errors }) {
          const durationMs = performance.now() - started;
          const codes = errors?.length ? [...new Set(errors.map((e) => classifyError(unwrapResolverError(e)).code))].slice(0, 10) : NO_CODES;
          const status = response.http.status ?? 200;
          metrics.graphqlDuration.observe({ operation: operationLabel(operationName), status: codes.length ? 'error' : 'ok' }, durationMs / 1000);
          // The line is made only when its level is written.
          if (!logger.isLevelEnabled('info')) return;
          logger.info({
            msg: 'graphql request', requestId: contextValue.requestId, operationName: clip(operationName), status, durationMs: Math.round(durationMs),
            errorCodes: codes.map((c) => clip(c)),
          });
        },
      };
    },
  };
}

/**
 * One response carries at most MAX_RESPONSE_ERRORS errors: a page whose every item fails on every selected field would
 * otherwise answer (and serialise) one error per item and field.
 */
export function errorCapPlugin(): ApolloServerPlugin<GraphQLContext> {
  // The listener keeps nothing per request: one for all of them.
  const listening = Promise.resolve<GraphQLRequestListener<GraphQLContext>>({
    async willSendResponse({ response }) {
      if (response.body.kind !== 'single') return;
      const errors = response.body.singleResult.errors;
      if (!errors || errors.length <= MAX_RESPONSE_ERRORS) return;
      const dropped = errors.length - (MAX_RESPONSE_ERRORS - 1);
      response.body.singleResult.errors = [
        ...errors.slice(0, MAX_RESPONSE_ERRORS - 1),
        { message: `${dropped} more errors omitted`, extensions: { code: errors[MAX_RESPONSE_ERRORS - 1]?.extensions?.code ?? ApolloServerErrorCode.INTERNAL_SERVER_ERROR, omitted: dropped } },
      ];
    },
  });
  return { requestDidStart: () => listening };
}
