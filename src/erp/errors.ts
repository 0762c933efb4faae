/**
 * Every failure of an ERP call is one of these classes, each with a stable `code` (like undici's `UND_ERR_*`) and a
 * default message, built undici style with the call's path passed in: `new ErpClosedError({ path })`. One file on
 * purpose (a little over 200 lines): it is the one list of what can go wrong, and what each failure means.
 *
 * Two properties drive what callers do with an error:
 * - `retryable`: a read may be sent again (the ERP or the network hiccuped; nothing suggests the request was wrong).
 * - `mayHaveReachedErp`: the ERP may have acted on the request. For a write this is the difference between
 *   "rejected" and "outcome unknown", and an unknown write must never be retried blindly.
 */
export const ErpErrorCode = {
  Connect: 'ERP_CONNECT',
  Timeout: 'ERP_TIMEOUT',
  Socket: 'ERP_SOCKET',
  HttpStatus: 'ERP_HTTP_STATUS',
  BadResponse: 'ERP_BAD_RESPONSE',
  Session: 'ERP_SESSION',
  Auth: 'ERP_AUTH',
  ScriptError: 'ERP_SCRIPT_ERROR',
  Status: 'ERP_STATUS',
  Rejected: 'ERP_REJECTED',
  Busy: 'ERP_BUSY',
  CircuitOpen: 'ERP_CIRCUIT_OPEN',
  Aborted: 'ERP_ABORTED',
  Closed: 'ERP_CLIENT_CLOSED',
} as const;
export type ErpErrorCode = (typeof ErpErrorCode)[keyof typeof ErpErrorCode];

export interface ErpErrorOptions {
  /** The ERP endpoint path the call went to. */
  path?: string;
  cause?: unknown;
}

/** `(message?, options?)` or just `(options)`: the class's default message unless one is given. */
type MessageOr = [message?: string | ErpErrorOptions, options?: ErpErrorOptions];
const messageOr = (fallback: string, [message, options]: MessageOr): [string, ErpErrorOptions | undefined] =>
  typeof message === 'object' ? [fallback, message] : [message ?? fallback, options];

export abstract class ErpError extends Error {
  abstract readonly code: ErpErrorCode;
  abstract readonly retryable: boolean;
  abstract readonly mayHaveReachedErp: boolean;
  /** The ERP endpoint path the call went to; '' when the failure belongs to no one call. */
  path: string;

  constructor(message: string, options: ErpErrorOptions = {}) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.path = options.path ?? '';
  }
}

/** No connection could be made: the request never left. */
export class ErpConnectError extends ErpError {
  readonly code = ErpErrorCode.Connect;
  readonly retryable = true;
  readonly mayHaveReachedErp = false;
  constructor(...args: MessageOr) {
    super(...messageOr('cannot connect to the ERP', args));
  }
}

/** Connected, sent, and no (complete) answer in time. The message says which limit, with its value. */
export class ErpTimeoutError extends ErpError {
  readonly code = ErpErrorCode.Timeout;
  readonly retryable = true;
  readonly mayHaveReachedErp = true;
  constructor(
    message: string,
    readonly phase: 'headers' | 'body' | 'total',
    options?: ErpErrorOptions,
  ) {
    super(message, options);
  }
}

/** The connection was reset or closed mid-call. */
export class ErpSocketError extends ErpError {
  readonly code = ErpErrorCode.Socket;
  readonly retryable = true;
  readonly mayHaveReachedErp = true;
  constructor(...args: MessageOr) {
    super(...messageOr('ERP connection failed', args));
  }
}

/** A non-200 HTTP answer (404 for an unknown page, IIS 500 pages, ...). */
export class ErpHttpStatusError extends ErpError {
  readonly code = ErpErrorCode.HttpStatus;
  readonly mayHaveReachedErp = true;
  readonly retryable: boolean;
  constructor(
    readonly statusCode: number,
    options?: ErpErrorOptions,
  ) {
    super(`ERP answered HTTP ${statusCode}`, options);
    this.retryable = statusCode >= 500;
  }
}

/** The answer was not the protocol: HTML, truncated or malformed JSON, or a body of the wrong shape. */
export class ErpBadResponseError extends ErpError {
  readonly code = ErpErrorCode.BadResponse;
  readonly retryable = true;
  readonly mayHaveReachedErp = true;
  constructor(
    message: string,
    readonly kind: 'html' | 'json' | 'shape',
    options?: ErpErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * A failure status in the reply's header (ERP-PROTOCOL.md §3): the message carries the ERP's own text, as decode.ts
 * writes it (`ERP <what>: <header.message>`).
 */
export abstract class ErpHeaderStatusError extends ErpError {
  constructor(
    message: string,
    readonly status: number,
    options?: ErpErrorOptions,
  ) {
    super(message, options);
  }
}

/** Status 1, 2, 9, 10 or 15: the session is gone; a new login may fix it. The ERP did not act on the request. */
export class ErpSessionError extends ErpHeaderStatusError {
  readonly code = ErpErrorCode.Session;
  readonly retryable = false;
  readonly mayHaveReachedErp = false;
}

/** Status 4/5 or a failed login: the account itself is refused. */
export class ErpAuthError extends ErpHeaderStatusError {
  readonly code = ErpErrorCode.Auth;
  readonly retryable = false;
  readonly mayHaveReachedErp = false;
}

/** Any other non-zero status. */
export class ErpStatusError extends ErpHeaderStatusError {
  readonly code = ErpErrorCode.Status;
  readonly retryable = false;
  readonly mayHaveReachedErp = false;
}

/** Status "11": an unhandled script error on the server; the script may have stopped half-way. */
export class ErpScriptError extends ErpError {
  readonly code = ErpErrorCode.ScriptError;
  readonly retryable = true;
  readonly mayHaveReachedErp = true;
  constructor(...args: MessageOr) {
    super(...messageOr('ERP script error', args));
  }
}

/** The ERP answered normally but refused the business request (a MessageClass where data was expected). */
export class ErpRejectedError extends ErpError {
  readonly code = ErpErrorCode.Rejected;
  readonly retryable = false;
  readonly mayHaveReachedErp = false;
  constructor(...args: MessageOr) {
    super(...messageOr('ERP refused the request', args));
  }
}

/** Our own bound on concurrent ERP calls was full for longer than the allowed wait. */
export class ErpBusyError extends ErpError {
  readonly code = ErpErrorCode.Busy;
  readonly retryable = false;
  readonly mayHaveReachedErp = false;
  constructor(...args: MessageOr) {
    super(...messageOr('no ERP call slot free in time', args));
  }
}

/** The circuit breaker is open: the ERP failed too often recently; calls fail fast. */
export class ErpCircuitOpenError extends ErpError {
  readonly code = ErpErrorCode.CircuitOpen;
  readonly retryable = false;
  readonly mayHaveReachedErp = false;
  constructor(...args: MessageOr) {
    super(...messageOr('ERP circuit breaker is open: failing fast', args));
  }
}

/** Where a call was when its caller gave up: it makes the message, and says whether the ERP may have seen the call. */
export type AbortPhase = 'unsent' | 'queued' | 'retrying' | 'shared' | 'sent';

const ABORTED: Record<AbortPhase, { message: string; mayHaveReachedErp: boolean }> = {
  unsent: { message: 'ERP call abandoned by its caller before it was sent', mayHaveReachedErp: false },
  queued: { message: 'ERP call abandoned by its caller while queued for a call slot', mayHaveReachedErp: false },
  // The last attempt's own error knows whether that attempt reached the ERP: the retry layer passes it on.
  retrying: { message: 'ERP call abandoned by its caller while waiting to retry', mayHaveReachedErp: false },
  // The caller stopped waiting for a read it shared (coalescing); the shared call goes on for the others.
  shared: { message: 'ERP read abandoned by its caller while sharing an identical read', mayHaveReachedErp: false },
  sent: { message: 'ERP call abandoned by its caller while on the wire', mayHaveReachedErp: true },
};

/** The caller gave up (request deadline or client disconnect). */
export class ErpAbortedError extends ErpError {
  readonly code = ErpErrorCode.Aborted;
  readonly retryable = false;
  readonly mayHaveReachedErp: boolean;
  readonly phase: AbortPhase | undefined;

  constructor(options: ErpErrorOptions & { phase?: AbortPhase; mayHaveReachedErp?: boolean } = {}) {
    const known = options.phase === undefined ? undefined : ABORTED[options.phase];
    super(known?.message ?? 'ERP call abandoned by its caller', options);
    this.phase = options.phase;
    // Without a phase nobody knows where the call was: it may have been sent.
    this.mayHaveReachedErp = options.mayHaveReachedErp ?? known?.mayHaveReachedErp ?? true;
  }
}

/** The client is shutting down: the call was not sent. */
export class ErpClosedError extends ErpError {
  readonly code = ErpErrorCode.Closed;
  readonly retryable = false;
  readonly mayHaveReachedErp = false;
  constructor(...args: MessageOr) {
    super(...messageOr('ERP client is closed: call not sent', args));
  }
}

export function isErpError(e: unknown): e is ErpError {
  return e instanceof ErpError;
}
