import type { ErpCall } from './call';

export interface LoginDetail {
  /** Why the login failed: the ERP's reason text for a refusal, our error text for a transient failure. */
  reason?: string;
  /** The account was refused: no login is tried before this time (epoch ms). */
  retryAt?: number;
}

/**
 * What the client reports about itself. Logging and metrics implement it outside the client, so the protocol code
 * depends on no logger or metrics library.
 */
export interface ErpObserver {
  /** One attempt on the wire: `outcome` is 'ok' or the ErpError code. */
  attempt?(call: ErpCall, outcome: string, durationMs: number): void;
  retry?(call: ErpCall, attempt: number, delayMs: number, code: string): void;
  /** `outcome` is 'ok' or the ErpError code; `detail.reason` is the ERP's own text (never a password). */
  login?(identity: string, outcome: string, detail?: LoginDetail): void;
  breaker?(state: 'open' | 'halfOpen' | 'close'): void;
  coalesced?(call: ErpCall): void;
  cache?(call: ErpCall, result: 'hit' | 'miss' | 'stale' | 'bypass'): void;
  /** The ERP refused the identity of `call` (`code`): that identity's cached answers were dropped. */
  cacheDropped?(call: ErpCall, code: string): void;
  queue?(active: number, pending: number): void;
  /**
   * `call` found every process-wide call slot taken and waits in the limiter's queue; called in the caller's context.
   * The function returned, if any, is called once when the wait ends: with 'slot', or the ErpError code it ended with.
   */
  waiting?(call: ErpCall): ((outcome: string) => void) | void;
}

export const noopObserver: ErpObserver = {};
