/**
 * What the fleet adapters report about themselves. The server implements it as metrics and log lines (fleet/ imports
 * no logger or metrics library). Nothing reported here ever carries a token, a key's input or a Redis password.
 */
export interface FleetObserver {
  /** One Redis command (or script): `outcome` is 'ok', 'error', 'timeout', or 'skipped' (Redis known down: not sent). */
  redisCommand?(op: string, outcome: RedisOutcome, durationMs: number): void;
  /** The connection came up or went down; `reason` is an error code or message without credentials. */
  redisState?(up: boolean, reason?: string): void;
  /** This replica's fleet permits: held now, and calls waiting for one. */
  permits?(held: number, waiting: number): void;
  /** A permit-related event: 'fallback' (Redis unreachable: the per-replica share was used), 'lost' (a held permit expired). */
  permitEvent?(event: 'fallback' | 'lost' | 'timeout'): void;
  /** A shared read-cache lookup: 'hit', 'miss', 'error' (Redis failed: treated as a miss). */
  sharedCache?(result: 'hit' | 'miss' | 'error'): void;
  /** A cold read's fleet-wide single flight: 'lead' (this call reads the ERP), 'joined' (served what another replica read), 'gave-up' (waited its bound, reads itself). */
  singleFlight?(outcome: 'lead' | 'joined' | 'gave-up'): void;
  /** The shared service session: 'adopted' (took the fleet's token), 'login' (this replica logged in for the fleet), 'local' (Redis unreachable: logged in alone). */
  session?(event: 'adopted' | 'login' | 'local'): void;
  /** Keyed saves: 'claimed', 'replayed', 'waited', 'recovered' (an expired claim was taken over), 'unavailable' (Redis down: refused). */
  idempotency?(event: 'claimed' | 'replayed' | 'waited' | 'recovered' | 'unavailable'): void;
  /** The change feed's lease of a key: 'taken' (this replica polls it now), 'lost' (it expired while held: Redis was unreachable). */
  feedLease?(event: 'taken' | 'lost'): void;
  /** The change feed's bus: 'gap' (the subscriber connection came back: listeners re-synchronise), 'oversize' (a message over the byte bound was refused), 'invalid' (a received message was not one). */
  feedBus?(event: 'gap' | 'oversize' | 'invalid'): void;
}

export type RedisOutcome = 'ok' | 'error' | 'timeout' | 'skipped';
