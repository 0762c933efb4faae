import type { ErpCall } from './call';

/**
 * What the client reports about itself. Logging and metrics implement it outside the client, so the protocol code
 * depends on no logger or metrics library.
 */
export interface ErpObserver {
  /** One attempt on the wire: `outcome` is 'ok' or the ErpError code. */
  attempt?(call: ErpCall, outcome: string, durationMs: number): void;
  retry?(call: ErpCall, attempt: number, delayMs: number, code: string): void;
  login?(identity: string, outcome: string): void;
  breaker?(state: 'open' | 'halfOpen' | 'close'): void;
  coalesced?(call: ErpCall): void;
  cache?(call: ErpCall, result: 'hit' | 'miss' | 'stale'): void;
  queue?(active: number, pending: number): void;
}

export const noopObserver: ErpObserver = {};
