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
}
