import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { SharedRefusal, SharedRefusalState, SharedSessionStore } from '../erp/shared-session';
import type { FleetObserver } from './observer';
import type { FleetRedis } from './redis';

export interface RedisSessionStoreOptions {
  /** How long one replica may hold the fleet's login (a bit above ZB_TIMEOUT_MS): a replica that dies mid-login frees it by then. */
  lockMs: number;
  /** How long a published token is kept: a hint, dropped long before any ERP would still honour it. */
  tokenTtlMs?: number;
  /** How often a replica waiting for another's login looks for the new token. */
  pollMs?: number;
  observer?: FleetObserver;
}

// Publish `fresh` only over the token the login replaced (or none): a token someone else published meanwhile stays.
const COMPARE_AND_SET = `
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`;

// A lock is freed only by its owner: one that expired and was taken by another replica is not theirs to free.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const DEFAULT_TOKEN_TTL_MS = 12 * 3600_000;

/**
 * The fleet's service session in Redis: `session:<identity>` holds the token (a secret: it is never logged, never a
 * metric label, never in an error), `session:<identity>:login` is the single-flight lock (SET NX PX, an owner id as
 * value). A replica that needs a token takes the published one unless it is the one the ERP just refused; otherwise
 * it tries the lock: the winner checks once more, logs in, publishes with compare-and-set and frees the lock; the
 * others poll for the new token. A lock whose holder died expires after `lockMs` and the next waiter takes it over.
 * Redis unreachable: this replica logs in alone (its own single flight still holds: at most one login per replica).
 *
 * When the ERP refuses the account, `session:<identity>:refused` holds the refusal (status, the ERP's reason, until,
 * step; no secret) and expires with the backoff; `session:<identity>:refusals` keeps the step beyond it, so the next
 * refusal, on any replica, doubles the fleet's pause. The service session reads them under the login lock (within
 * `acquire`'s `login`), so while the refusal is in force no replica calls the ERP; a successful login drops both.
 */
export class RedisSessionStore implements SharedSessionStore {
  private readonly tokenTtlMs: number;
  private readonly pollMs: number;
  private readonly observer: FleetObserver;

  constructor(
    private readonly redis: FleetRedis,
    private readonly options: RedisSessionStoreOptions,
  ) {
    this.tokenTtlMs = options.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS;
    this.pollMs = options.pollMs ?? 50;
    this.observer = options.observer ?? {};
  }

  async acquire(identity: string, stale: string | undefined, login: () => Promise<string>): Promise<string> {
    const tokenKey = this.redis.key('session', identity);
    const lockKey = `${tokenKey}:login`;
    // Two lock lifetimes: by then the lock has expired at least once and this replica has had its turn at it.
    const giveUpAt = Date.now() + 2 * this.options.lockMs + this.pollMs;
    for (;;) {
      const owner = randomUUID();
      let published: string | null;
      let won: boolean;
      try {
        published = await this.redis.run('session.get', (c) => c.get(tokenKey));
        if (published !== null && published !== stale) return this.adopted(published);
        won = (await this.redis.run('session.lock', (c) => c.set(lockKey, owner, 'PX', this.options.lockMs, 'NX'))) === 'OK';
      } catch {
        return this.alone(login);
      }
      if (won) return this.lead(tokenKey, lockKey, owner, stale, login);
      if (Date.now() > giveUpAt) return this.alone(login);
      await delay(this.pollMs);
    }
  }

  async refusal(identity: string): Promise<SharedRefusalState | undefined> {
    const [recordKey, stepKey] = this.refusalKeys(identity);
    try {
      const [record, step] = await this.redis.run('session.refusal', (c) => c.mget(recordKey, stepKey));
      const active = record ? parseRefusal(record) : undefined;
      const steps = Math.max(Number.parseInt(step ?? '0', 10) || 0, active?.step ?? 0);
      if (!active && steps === 0) return undefined;
      return { step: steps, ...(active && active.until > Date.now() ? { active } : {}) };
    } catch {
      return undefined;
    }
  }

  async recordRefusal(identity: string, refusal: SharedRefusal, stepTtlMs: number): Promise<void> {
    const [recordKey, stepKey] = this.refusalKeys(identity);
    const pause = Math.max(1, Math.ceil(refusal.until - Date.now()));
    const record = JSON.stringify({ status: refusal.status, reason: refusal.reason, until: refusal.until, step: refusal.step });
    await this.redis
      .run('session.refuse', (c) =>
        c
          .multi()
          .set(recordKey, record, 'PX', pause)
          .set(stepKey, String(refusal.step), 'PX', Math.max(pause, Math.ceil(stepTtlMs)))
          .exec(),
      )
      .catch(() => undefined);
  }

  async clearRefusal(identity: string): Promise<void> {
    const [recordKey, stepKey] = this.refusalKeys(identity);
    await this.redis.run('session.clear-refusal', (c) => c.del(recordKey, stepKey)).catch(() => undefined);
  }

  private refusalKeys(identity: string): [string, string] {
    const tokenKey = this.redis.key('session', identity);
    return [`${tokenKey}:refused`, `${tokenKey}:refusals`];
  }

  private adopted(token: string): string {
    this.observer.session?.('adopted');
    return token;
  }

  private alone(login: () => Promise<string>): Promise<string> {
    this.observer.session?.('local');
    return login();
  }

  private async lead(tokenKey: string, lockKey: string, owner: string, stale: string | undefined, login: () => Promise<string>): Promise<string> {
    try {
      // The previous holder may have published between our read and our lock.
      const published = await this.redis.run('session.get', (c) => c.get(tokenKey)).catch(() => stale ?? null);
      if (published !== null && published !== stale) return this.adopted(published);
      const fresh = await login();
      this.observer.session?.('login');
      // A failed publish costs the others a login of their own later, never this caller its token.
      await this.redis
        .run('session.publish', (c) => c.eval(COMPARE_AND_SET, 1, tokenKey, published ?? '', fresh, String(this.tokenTtlMs)))
        .catch(() => undefined);
      return fresh;
    } finally {
      await this.redis.run('session.unlock', (c) => c.eval(RELEASE, 1, lockKey, owner)).catch(() => undefined);
    }
  }
}

/** A stored refusal, or undefined when it does not read as one (another version wrote it, or it was tampered with). */
function parseRefusal(text: string): SharedRefusal | undefined {
  try {
    const value = JSON.parse(text) as Partial<Record<keyof SharedRefusal, unknown>>;
    const { status, reason, until, step } = value;
    if (typeof status !== 'number' || typeof reason !== 'string' || typeof until !== 'number' || typeof step !== 'number') return undefined;
    return { status, reason, until, step };
  } catch {
    return undefined;
  }
}
