import CircuitBreaker from 'opossum';
import type { ErpCall, ErpLayer, Send } from '../call';
import { ErpCircuitOpenError, ErpClosedError, ErpErrorCode, isErpError, type ErpError } from '../errors';
import type { ErpObserver } from '../observer';
import type { ErpReply } from '../types';
import { UnreachableCaseError } from '../unreachable';

export interface BreakerOptions {
  /** Failure share (percent) within the rolling window that opens the breaker. */
  errorThresholdPercentage: number;
  /** Calls in the window before the share is judged. */
  volumeThreshold: number;
  /** Time open before one probe call is let through (half-open). */
  resetTimeoutMs: number;
  rollingWindowMs: number;
}

/** Only signs of a sick ERP count against it; a refused session or a business answer means the ERP is fine. */
function countsAgainstErp(e: ErpError): boolean {
  const code = e.code;
  switch (code) {
    case ErpErrorCode.Connect:
    case ErpErrorCode.Timeout:
    case ErpErrorCode.Socket:
    case ErpErrorCode.BadResponse:
    case ErpErrorCode.ScriptError:
      return true;
    case ErpErrorCode.HttpStatus:
      return e.retryable;
    case ErpErrorCode.Session:
    case ErpErrorCode.Auth:
    case ErpErrorCode.Status:
    case ErpErrorCode.Rejected:
    case ErpErrorCode.Busy:
    case ErpErrorCode.CircuitOpen:
    case ErpErrorCode.Aborted:
    case ErpErrorCode.Closed:
      return false;
    default:
      throw new UnreachableCaseError(code);
  }
}

export interface Breaker extends ErpLayer {
  readonly state: 'open' | 'halfOpen' | 'closed';
  /** Shuts the breaker down: a call that still reaches it (a retry under way) fails with ERP_CLIENT_CLOSED. */
  close(): void;
}

/** A circuit breaker (opossum) around every attempt on the wire, so retries count too. */
export function circuitBreaker(options: BreakerOptions, observer: ErpObserver = {}): Breaker {
  let breaker: CircuitBreaker<[ErpCall, Send], ErpReply> | undefined;
  const make = () => {
    const b = new CircuitBreaker<[ErpCall, Send], ErpReply>((call, next) => next(call), {
      timeout: false,
      errorThresholdPercentage: options.errorThresholdPercentage,
      volumeThreshold: options.volumeThreshold,
      resetTimeout: options.resetTimeoutMs,
      rollingCountTimeout: options.rollingWindowMs,
      rollingCountBuckets: 10,
      // Only the counts decide; latency percentiles (a sorted copy of every call's latency in the window, on every
      // failure) and per-bucket snapshots (the same, every second) are work nobody reads.
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      // true = "not a failure".
      errorFilter: (e: unknown) => !isErpError(e) || !countsAgainstErp(e),
    });
    b.on('open', () => observer.breaker?.('open'));
    b.on('halfOpen', () => observer.breaker?.('halfOpen'));
    b.on('close', () => observer.breaker?.('close'));
    return b;
  };
  return {
    wrap: (next) => {
      breaker ??= make();
      const b = breaker;
      // opossum's own refusals, as our named errors: open circuit, or a breaker already shut down by close().
      const named = (call: ErpCall, e: unknown): never => {
        if (isErpError(e) || !(e instanceof Error)) throw e;
        const code = (e as { code?: string }).code;
        if (code === 'EOPENBREAKER') throw new ErpCircuitOpenError({ path: call.path });
        if (code === 'ESHUTDOWN') throw new ErpClosedError({ path: call.path });
        throw e;
      };
      return (call) => {
        // A closed (or half-open, probing) breaker lets the call through: then only the call's own errors come back, and
        // they need no renaming. Opossum's refusals come only when it is open or shut down.
        if (!b.isShutdown && (b.closed || b.pendingClose)) return b.fire(call, next);
        return b.fire(call, next).then(undefined, (e: unknown) => named(call, e));
      };
    },
    get state() {
      if (!breaker) return 'closed';
      return breaker.opened ? 'open' : breaker.halfOpen ? 'halfOpen' : 'closed';
    },
    close: () => breaker?.shutdown(),
  };
}
