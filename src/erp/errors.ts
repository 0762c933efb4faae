/**
 * Every failure of an ERP call is one of these classes, each with a stable `code` (like undici's `UND_ERR_*`).
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

export abstract class ErpError extends Error {
  abstract readonly code: ErpErrorCode;
  abstract readonly retryable: boolean;
  abstract readonly mayHaveReachedErp: boolean;
  /** The ERP endpoint path the call went to. */
  path = '';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** No connection could be made: the request never left. */
export class ErpConnectError extends ErpError {
  readonly code = ErpErrorCode.Connect;
  readonly retryable = true;
  readonly mayHaveReachedErp = false;
}

/** Connected, sent, and no (complete) answer in time. */
export class ErpTimeoutError extends ErpError {
  readonly code = ErpErrorCode.Timeout;
  readonly retryable = true;
  readonly mayHaveReachedErp = true;
  constructor(
    message: string,
    readonly phase: 'headers' | 'body' | 'total',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The connection was reset or closed mid-call. */
export class ErpSocketError extends ErpError {
  readonly code = ErpErrorCode.Socket;
  readonly retryable = true;
  readonly mayHaveReachedErp = true;
}

/** A non-200 HTTP answer (404 for an unknown page, IIS 500 pages, ...). */
export class ErpHttpStatusError extends ErpError {
  readonly code = ErpErrorCode.HttpStatus;
  readonly mayHaveReachedErp = true;
  readonly retryable: boolean;
  constructor(readonly statusCode: number) {
    super(`ERP answered HTTP ${statusCode}`);
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
  ) {
    super(message);
  }
}

/** Status 1, 2, 9, 10 or 15: the session is gone; a new login may fix it. The ERP did not act on the request. */
export class ErpSessionError extends ErpError {
  readonly code = ErpErrorCode.Session;
  readonly retryable = false;
  readonly mayHaveReachedErp = false;
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Status 4/5 or a failed login: the account itself is refused. */
export class ErpAuthError extends ErpError {
  readonly code = ErpErrorCode.Auth;
  readonly retryable = false;
  readonly mayHaveReachedErp = false;
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Status "11": an unhandled script error on the server; the script may have stopped half-way. */
export class ErpScriptError extends ErpError {
  readonly code = ErpErrorCode.ScriptError;
  readonly retryable = true;
  readonly mayHaveReachedErp = true;
}

/** Any other non-zero status. */
export class ErpStatusError extends ErpError {
  readonly code = ErpErrorCode.Status;
  readonly retryable = false;
  readonly mayHaveReachedErp = false;
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The ERP answered normally but refused the business request (a MessageClass where data was expected). */
export class ErpRejectedError extends ErpError {
  readonly code = ErpErrorCode.Rejected;
  readonly retryable = false;
  readonly mayHaveReachedErp = false;
}

/** Our own bound on concurrent ERP calls was full for longer than the allowed wait. */
export class ErpBusyError extends ErpError {
  readonly code = ErpErrorCode.Busy;
  readonly retryable = false;
  readonly mayHaveReachedErp = false;
}

/** The circuit breaker is open: the ERP failed too often recently; calls fail fast. */
export class ErpCircuitOpenError extends ErpError {
  readonly code = ErpErrorCode.CircuitOpen;
  readonly retryable = false;
  readonly mayHaveReachedErp = false;
}

/** The caller gave up (request deadline or client disconnect). */
export class ErpAbortedError extends ErpError {
  readonly code = ErpErrorCode.Aborted;
  readonly retryable = false;
  constructor(
    message: string,
    readonly mayHaveReachedErp: boolean,
  ) {
    super(message);
  }
}

/** The client is shutting down: the call was not sent. */
export class ErpClosedError extends ErpError {
  readonly code = ErpErrorCode.Closed;
  readonly retryable = false;
  readonly mayHaveReachedErp = false;

  constructor(options?: { cause?: unknown }) {
    super('ERP client is closed: call not sent', options);
  }
}

export function isErpError(e: unknown): e is ErpError {
  return e instanceof ErpError;
}
