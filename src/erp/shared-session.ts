/**
 * Where a service account's ERP session token is shared with the other replicas of a fleet (fleet/session.ts keeps it
 * in Redis). The service session asks it instead of logging in, so replicas that share an account share one login:
 * an ERP that kicks older sessions on a new login of the same account would otherwise have them kick each other.
 */
export interface SharedSessionStore {
  /**
   * A token for `identity` other than `stale` (undefined: any token): the fleet's current one, or, when this replica
   * wins the fleet's single flight, the result of `login`, published for the others. Never fails because of the
   * store itself (unreachable: it runs `login` alone); rejects with `login`'s own error.
   */
  acquire(identity: string, stale: string | undefined, login: () => Promise<string>): Promise<string>;
  /**
   * The fleet's record of the ERP refusing `identity` (asked within `acquire`'s `login`, so within the fleet's single
   * flight): the refusal still in force, if any, and the refusals in a row so far (the step the backoff doubles from).
   * Undefined when there is none or the store is unreachable (the replica then backs off on its own).
   */
  refusal?(identity: string): Promise<SharedRefusalState | undefined>;
  /** Records a refusal for the fleet: `refusal` until its `until`, its step for `stepTtlMs` (longer: the next refusal doubles it). Never fails. */
  recordRefusal?(identity: string, refusal: SharedRefusal, stepTtlMs: number): Promise<void>;
  /** A login succeeded: the fleet's refusal and step are dropped. Never fails. */
  clearRefusal?(identity: string): Promise<void>;
}

/** The ERP's refusal of the account: its status, its own reason text (never a password), the end of the backoff (epoch ms) and the refusals in a row. */
export interface SharedRefusal {
  status: number;
  reason: string;
  until: number;
  step: number;
}

export interface SharedRefusalState {
  /** The refusal whose backoff has not ended yet. */
  active?: SharedRefusal;
  /** Refusals in a row recorded by the fleet since the last successful login. */
  step: number;
}
