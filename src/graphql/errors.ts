import { GraphQLError } from 'graphql';
import { ErpErrorCode, isErpError, type ErpError } from '../erp/errors';
import { FilterError } from '../domain/filter';

/** Every error this subgraph raises carries one of these as `extensions.code`. */
export const ErrorCode = {
  BadUserInput: 'BAD_USER_INPUT',
  Unauthenticated: 'UNAUTHENTICATED',
  Forbidden: 'FORBIDDEN',
  UpstreamUnavailable: 'UPSTREAM_UNAVAILABLE',
  UpstreamTimeout: 'UPSTREAM_TIMEOUT',
  UpstreamBadResponse: 'UPSTREAM_BAD_RESPONSE',
  UpstreamError: 'UPSTREAM_ERROR',
  UpstreamBusy: 'UPSTREAM_BUSY',
  ServerBusy: 'SERVER_BUSY',
  /** The first handleService call with this idempotency key is still running; retry later. */
  IdempotencyKeyInUse: 'IDEMPOTENCY_KEY_IN_USE',
  /** Too many keyed handleService calls are in flight; retry later. */
  IdempotencyStoreFull: 'IDEMPOTENCY_STORE_FULL',
  /** The operation's estimated ERP calls, items or representations exceed a per-operation limit (Apollo Router's name). */
  CostEstimatedTooExpensive: 'COST_ESTIMATED_TOO_EXPENSIVE',
  InternalServerError: 'INTERNAL_SERVER_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export function userInputError(message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { ...extensions, code: ErrorCode.BadUserInput } });
}

/**
 * The public face of an ERP failure. Messages are fixed per code: the ERP's own texts can carry SQL fragments and
 * other internals, so they go to the log, not to the client.
 */
function fromErp(e: ErpError): { code: ErrorCode; message: string } {
  switch (e.code) {
    case ErpErrorCode.Connect:
      return { code: ErrorCode.UpstreamUnavailable, message: 'The ERP cannot be reached.' };
    case ErpErrorCode.Socket:
      return { code: ErrorCode.UpstreamUnavailable, message: 'The connection to the ERP failed.' };
    case ErpErrorCode.CircuitOpen:
      return { code: ErrorCode.UpstreamUnavailable, message: 'The ERP is failing; calls are paused for a moment.' };
    case ErpErrorCode.HttpStatus:
      return e.retryable
        ? { code: ErrorCode.UpstreamUnavailable, message: 'The ERP answered with a server error.' }
        : { code: ErrorCode.UpstreamBadResponse, message: 'The ERP answered with an unexpected HTTP status.' };
    case ErpErrorCode.Timeout:
      return { code: ErrorCode.UpstreamTimeout, message: 'The ERP did not answer in time.' };
    case ErpErrorCode.Aborted:
      return { code: ErrorCode.UpstreamTimeout, message: 'The request deadline passed before the ERP answered.' };
    case ErpErrorCode.BadResponse:
      return { code: ErrorCode.UpstreamBadResponse, message: 'The ERP answered something that is not its protocol.' };
    case ErpErrorCode.Session:
      return { code: ErrorCode.Unauthenticated, message: 'The ERP session is not valid; sign in to the ERP again.' };
    case ErpErrorCode.Auth:
      return { code: ErrorCode.Unauthenticated, message: 'The ERP refused the account.' };
    case ErpErrorCode.ScriptError:
    case ErpErrorCode.Status:
      return { code: ErrorCode.UpstreamError, message: 'The ERP failed to process the request.' };
    case ErpErrorCode.Rejected:
      return { code: ErrorCode.Forbidden, message: 'The ERP refused to show this record.' };
    case ErpErrorCode.Busy:
      return { code: ErrorCode.UpstreamBusy, message: 'Too many ERP calls are waiting; try again shortly.' };
    case ErpErrorCode.Closed:
      return { code: ErrorCode.UpstreamUnavailable, message: 'The service is shutting down; try again.' };
  }
}

/** Any error from below the GraphQL layer, as a GraphQLError with a code. Unknown errors pass through to masking. */
export function toGraphQLError(e: unknown): unknown {
  if (e instanceof GraphQLError) return e;
  if (e instanceof FilterError) return userInputError(e.message, { field: e.field });
  if (isErpError(e)) {
    const { code, message } = fromErp(e);
    return new GraphQLError(message, { extensions: { code, erpCode: e.code }, originalError: e });
  }
  return e;
}

/** Wraps a resolver body so that lower-layer errors leave it typed. */
export async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    throw toGraphQLError(e);
  }
}
