import { ApolloServerErrorCode } from '@apollo/server/errors';
import { GraphQLError } from 'graphql';
import { FeedClosedError, FeedLimitError, FeedOverflowError, FeedUnauthenticatedError } from '../domain/feed';
import { IdempotencyKeyInUseError, IdempotencyStoreFullError } from '../domain/idempotency';
import { IdempotencyStoreUnavailableError } from '../domain/recovery';
import { InputError } from '../domain/input';
import { ErpErrorCode, isErpError, type ErpError } from '../erp/errors';
import { UnreachableCaseError } from '../erp/unreachable';

/**
 * Error translation, in one place. Resolvers and the domain throw their own errors (ERP errors, InputError, the
 * idempotency errors) and never wrap them; `classifyError` is the one map from any thrown value to what a client sees
 * (`extensions.code`, a public message, public extensions). The server's `formatError` and its request log both ask it
 * (server/errors.ts, server/plugins.ts), so a resolver cannot forget a translation, and "unexpected" (logged in full,
 * masked as INTERNAL_SERVER_ERROR) means the same thing in the response and in the log.
 */

/** Our own codes, beside Apollo's (`ApolloServerErrorCode`: BAD_USER_INPUT, INTERNAL_SERVER_ERROR, GRAPHQL_*). */
export const ErrorCode = {
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
  /** The shared idempotency store (Redis) is unreachable: a keyed save was refused before anything was sent; retry later. */
  IdempotencyStoreUnavailable: 'IDEMPOTENCY_STORE_UNAVAILABLE',
  /** The operation's estimated ERP calls, items or representations exceed a per-operation limit (Apollo Router's name). */
  CostEstimatedTooExpensive: 'COST_ESTIMATED_TOO_EXPENSIVE',
  /** A subscriber fell too far behind its events (ZB_FEED_BUFFER_*): the subscription ended; subscribe again. */
  FeedOverflow: 'FEED_OVERFLOW',
  /** A subscription refused by a bound of the change feed (ZB_FEED_MAX_*); try again later. */
  FeedLimitReached: 'FEED_LIMIT_REACHED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** What a client is told about a thrown value. */
export interface PublicError {
  /** `extensions.code`. */
  code: string;
  /** Safe to show: never the ERP's own text. */
  message: string;
  /** Further public extensions (`field`, `index`, `retryable`, `erpCode`, `cost`). */
  extensions: Readonly<Record<string, unknown>>;
  /** False for bugs and anything unknown: masked as INTERNAL_SERVER_ERROR and logged in full as unexpected. */
  expected: boolean;
}

/** Codes a GraphQLError may carry to the client as they are: ours, and Apollo's own request errors. */
const PUBLIC_CODES = new Set<string>([
  ...Object.values(ErrorCode),
  ApolloServerErrorCode.BAD_USER_INPUT,
  ApolloServerErrorCode.GRAPHQL_PARSE_FAILED,
  ApolloServerErrorCode.GRAPHQL_VALIDATION_FAILED,
  ApolloServerErrorCode.BAD_REQUEST,
  ApolloServerErrorCode.PERSISTED_QUERY_NOT_FOUND,
  ApolloServerErrorCode.PERSISTED_QUERY_NOT_SUPPORTED,
  ApolloServerErrorCode.OPERATION_RESOLUTION_FAILURE,
]);

const UNEXPECTED: PublicError = { code: ApolloServerErrorCode.INTERNAL_SERVER_ERROR, message: 'Internal server error', extensions: {}, expected: false };

/**
 * The public face of an ERP failure. Messages are fixed per code: the ERP's own texts can carry SQL fragments and
 * other internals, so they go to the log, not to the client.
 */
function fromErp(e: ErpError): { code: ErrorCode; message: string } {
  const code = e.code;
  switch (code) {
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
    default:
      throw new UnreachableCaseError(code);
  }
}

/**
 * Any thrown value -> what the client sees. Pass the original error (Apollo's `unwrapResolverError`); a GraphQLError
 * with no code that wraps another error is judged by the error it wraps.
 */
export function classifyError(error: unknown): PublicError {
  if (isErpError(error)) return { ...fromErp(error), extensions: { erpCode: error.code }, expected: true };
  if (error instanceof InputError) {
    return { code: ApolloServerErrorCode.BAD_USER_INPUT, message: error.message, extensions: { field: error.field }, expected: true };
  }
  // `retryable`: the same call may succeed later.
  if (error instanceof IdempotencyKeyInUseError) return { code: ErrorCode.IdempotencyKeyInUse, message: error.message, extensions: { retryable: true }, expected: true };
  if (error instanceof IdempotencyStoreFullError) return { code: ErrorCode.IdempotencyStoreFull, message: error.message, extensions: { retryable: true }, expected: true };
  if (error instanceof IdempotencyStoreUnavailableError) return { code: ErrorCode.IdempotencyStoreUnavailable, message: error.message, extensions: { retryable: true }, expected: true };
  if (error instanceof FeedOverflowError) return { code: ErrorCode.FeedOverflow, message: error.message, extensions: { retryable: true }, expected: true };
  if (error instanceof FeedLimitError) {
    return { code: ErrorCode.FeedLimitReached, message: error.message, extensions: { limit: error.limit, max: error.max, retryable: true }, expected: true };
  }
  if (error instanceof FeedClosedError) return { code: ErrorCode.ServerBusy, message: error.message, extensions: { retryable: true }, expected: true };
  // The subscription's own session, refused by the ERP: the same code as any request whose session is refused.
  if (error instanceof FeedUnauthenticatedError) return { code: ErrorCode.Unauthenticated, message: error.message, extensions: {}, expected: true };
  if (error instanceof GraphQLError) {
    const { code, http: _http, ...extensions } = error.extensions;
    if (typeof code === 'string' && PUBLIC_CODES.has(code)) return { code, message: error.message, extensions, expected: true };
    if (code === undefined && error.originalError) return classifyError(error.originalError);
  }
  return UNEXPECTED;
}

/**
 * Input the GraphQL layer itself refuses before the domain sees it (a scalar's format, `_entities` representations).
 * Already public: `classifyError` passes it through.
 */
export function userInputError(message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { ...extensions, code: ApolloServerErrorCode.BAD_USER_INPUT } });
}
