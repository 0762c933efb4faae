import { HeaderMap, type ApolloServerPlugin, type GraphQLRequestListener } from '@apollo/server';
import { GraphQLError } from 'graphql';
import type { GraphQLContext } from '../graphql/context';
import { operationEstimator, type EstimateRules, type OperationEstimate } from '../graphql/cost';
import { ErrorCode } from '../graphql/errors';
import type { Metrics } from './metrics';

/**
 * What one executing operation may keep alive, by its estimate. Measured under `npm start`'s flags with 100 clients
 * on the largest admitted shapes (test/abuse-memory.test.ts, `npm run bench:memory`): 10 aliased list pages of 100
 * (1,000 items) held ~4.2 MB per operation in flight, so a list item (row, model, resolved fields, its share of the
 * serialised response) is counted at 5 KB; a detail reply decoded and mapped, with its loader entry, at 24 KB; a
 * request's own machinery (context, loader, parsed variables, response buffers) at 64 KB.
 */
export const RETAINED_BYTES = { operation: 64 * 1024, item: 5 * 1024, erpCall: 24 * 1024 } as const;

export function estimatedBytes(e: OperationEstimate): number {
  return RETAINED_BYTES.operation + e.items * RETAINED_BYTES.item + e.erpCalls * RETAINED_BYTES.erpCall;
}

export interface AdmissionLimits {
  /** Operations executing at once (ZB_MAX_INFLIGHT_REQUESTS). */
  maxInflight: number;
  /** Sum of the estimated retained bytes of the operations executing at once (ZB_INFLIGHT_BUDGET_BYTES). */
  budgetBytes: number;
  maxErpCalls: number;
  maxItems: number;
  maxRepresentations: number;
}

/** One admitted request: its operation slot and the bytes its operation reserved. Released exactly once. */
export interface Ticket {
  reserve(bytes: number): boolean;
  release(): void;
}

/**
 * The process's admission budget: a count of operations (taken once the request body is in, so slow clients hold
 * none) and the estimated bytes they may retain (reserved once the operation is known). Both are what keep memory
 * bounded when clients arrive faster than the ERP answers.
 */
export class Admission {
  private operations = 0;
  private bytes = 0;

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly onChange: (operations: number, bytes: number) => void = () => undefined,
  ) {}

  get inflight(): number {
    return this.operations;
  }

  /** A slot for one request, or undefined when ZB_MAX_INFLIGHT_REQUESTS are executing. */
  enter(): Ticket | undefined {
    if (this.operations >= this.limits.maxInflight) return undefined;
    this.operations++;
    let reserved = 0;
    let released = false;
    this.onChange(this.operations, this.bytes);
    return {
      reserve: (bytes) => {
        // The first operation always fits, so an estimate above the whole budget still runs when nothing else does.
        if (this.bytes > 0 && this.bytes + bytes > this.limits.budgetBytes) return false;
        this.bytes += bytes;
        reserved += bytes;
        this.onChange(this.operations, this.bytes);
        return true;
      },
      release: () => {
        if (released) return;
        released = true;
        this.operations--;
        this.bytes -= reserved;
        this.onChange(this.operations, this.bytes);
      },
    };
  }
}

export function serverBusy(message: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code: ErrorCode.ServerBusy, http: { status: 503, headers: new HeaderMap([['retry-after', '1']]) } },
  });
}

function tooExpensive(what: string, estimate: number, limit: number, setting: string): GraphQLError {
  return new GraphQLError(`The operation is estimated at ${estimate} ${what}; at most ${limit} are allowed (${setting}).`, {
    extensions: { code: ErrorCode.CostEstimatedTooExpensive, cost: { what, estimate, limit }, http: { status: 400 } },
  });
}

/**
 * Admission by cost, after the operation is parsed and validated and before it executes: per-operation limits on ERP
 * calls, items and representations (400 COST_ESTIMATED_TOO_EXPENSIVE), an ERP identity for operations that need the
 * ERP (401), then the process budget (503 SERVER_BUSY). Nothing here calls the ERP.
 */
export function admissionPlugin(
  limits: AdmissionLimits,
  rules: EstimateRules,
  metrics: Metrics,
): ApolloServerPlugin<GraphQLContext> {
  // An operation's estimate, kept while its document is when it does not depend on the request's variables.
  const estimateOperation = operationEstimator(rules);
  // The listener keeps nothing per request: one for all of them.
  const listening = Promise.resolve<GraphQLRequestListener<GraphQLContext>>({
    async didResolveOperation({ contextValue, document, operation, request }) {
      // Apollo resolves the operation before this hook: an unresolvable one never gets here.
      if (!operation) return;
      let estimate: OperationEstimate;
      try {
        estimate = estimateOperation(document, operation, request.variables);
      } catch (e) {
        // Malformed `_entities` input: a client error, answered before anything runs.
        if (e instanceof GraphQLError) throw new GraphQLError(e.message, { extensions: { ...e.extensions, http: { status: 400 } } });
        throw e;
      }
      const refuse = (error: GraphQLError, reason: string) => {
        metrics.graphqlRefused.inc({ reason });
        return error;
      };
      if (estimate.representations > limits.maxRepresentations) {
        throw refuse(tooExpensive('representations', estimate.representations, limits.maxRepresentations, 'ZB_MAX_REPRESENTATIONS'), 'cost');
      }
      if (estimate.erpCalls > limits.maxErpCalls) {
        throw refuse(tooExpensive('ERP calls', estimate.erpCalls, limits.maxErpCalls, 'ZB_MAX_ERP_CALLS_PER_OPERATION'), 'cost');
      }
      if (estimate.items > limits.maxItems) throw refuse(tooExpensive('items', estimate.items, limits.maxItems, 'ZB_MAX_ITEMS_PER_OPERATION'), 'cost');
      if (estimate.erpCalls > 0 && contextValue.unauthenticated) {
        throw refuse(
          new GraphQLError(contextValue.unauthenticated, { extensions: { code: ErrorCode.Unauthenticated, http: { status: 401 } } }),
          'unauthenticated',
        );
      }
      if (!contextValue.reserve(estimatedBytes(estimate))) {
        metrics.graphqlShed.inc();
        throw refuse(serverBusy('The service is at its memory budget for operations in flight; try again shortly.'), 'budget');
      }
    },
  });
  return { requestDidStart: () => listening };
}
