import type { ErpCall, Send, SessionSource } from './call';
import { loginCall, type Credentials } from './client';
import { ErpAuthError, ErpBadResponseError, ErpError, ErpErrorCode, ErpHeaderStatusError } from './errors';
import type { ErpObserver } from './observer';
import type { SharedSessionStore } from './shared-session';
import type { ErpReply } from './types';

export interface ServiceSessionOptions {
  /** Pause after the ERP refuses the account; doubles per refusal in a row. */
  backoffMs?: number;
  /** Ceiling of that pause; a captcha demand goes straight to it (only a person can clear a captcha). */
  backoffMaxMs?: number;
  /** How a refusal that demands a captcha reads ([guess]: the reply's body, which carries `newrndcode`, is not kept). */
  captchaPattern?: RegExp;
  /** The clock, epoch ms; tests pass their own. */
  now?: () => number;
  /** Replicas sharing the account share one token through it (fleet/session.ts): a login is asked of it first. */
  shared?: SharedSessionStore;
}

export type SessionState = 'ready' | 'logging-in' | 'backoff' | 'not-logged-in';

export interface SessionStatus {
  state: SessionState;
  /** Why the last login failed: the ERP's own text for a refusal, our error text otherwise. Holds no secret. */
  reason?: string;
  /** In backoff: when a login may be tried again (epoch ms). */
  retryAt?: number;
}

/** The ERP's last refusal of the account: its status, its own reason text, and the end of the backoff (epoch ms). */
interface Refusal {
  status: number;
  reason: string;
  until: number;
}

const DEFAULT_BACKOFF_MS = 60_000;
const DEFAULT_BACKOFF_MAX_MS = 3_600_000;
const DEFAULT_CAPTCHA_PATTERN = /验证码|captcha|rndcode/i;

/** The ERP's own text from a decoded failure (decode.ts writes `ERP <what>: <header.message>`). */
function erpReason(e: ErpError): string {
  return e.message.replace(/^ERP [^:]*: ?/, '');
}

/**
 * One shared ERP session for a service account. Concurrent callers that need a login share a single one
 * (single-flight), so an expired session never causes a login storm.
 *
 * When the ERP refuses the account (wrong password, user invalid or frozen, captcha), logging in again cannot help
 * and each attempt counts towards the ERP's captcha lock: no login is tried for a growing backoff, and every caller
 * fails fast with an ErpAuthError meanwhile. Network and server failures are not refusals and start no backoff.
 */
export class ServiceAccountSession implements SessionSource {
  readonly identity: string;
  private current: string | undefined;
  private pending: Promise<string> | undefined;
  private readonly now: () => number;
  private readonly backoffMs: number;
  private readonly backoffMaxMs: number;
  private readonly captchaPattern: RegExp;
  /** Refusals in a row since the last successful login. */
  private refusals = 0;
  private refusal: Refusal | undefined;
  private lastFailure: string | undefined;
  private readonly shared: SharedSessionStore | undefined;
  /** The token the ERP last refused: the shared store must hand back another one. */
  private stale: string | undefined;

  constructor(
    private readonly send: Send,
    private readonly credentials: Credentials,
    private readonly loginPath: string,
    private readonly observer: ErpObserver = {},
    options: ServiceSessionOptions = {},
  ) {
    this.identity = `service:${credentials.user}`;
    this.now = options.now ?? Date.now;
    this.backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
    this.backoffMaxMs = Math.max(this.backoffMs, options.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS);
    this.captchaPattern = options.captchaPattern ?? DEFAULT_CAPTCHA_PATTERN;
    this.shared = options.shared;
  }

  token(call: ErpCall): Promise<string> {
    return this.current !== undefined ? Promise.resolve(this.current) : this.login(call);
  }

  held(): string | undefined {
    return this.current;
  }

  renew(stale: string, call: ErpCall): Promise<string> {
    // Someone else already replaced the refused token: use theirs rather than log in again.
    if (this.current !== undefined && this.current !== stale) return Promise.resolve(this.current);
    this.current = undefined;
    this.stale = stale;
    return this.login(call);
  }

  /** Whether a login has succeeded and its token is held (readiness). */
  get hasSession(): boolean {
    return this.current !== undefined;
  }

  /** Where the session stands, without calling the ERP: for readiness probes. */
  status(): SessionStatus {
    if (this.current !== undefined) return { state: 'ready' };
    const refusal = this.activeRefusal();
    if (refusal) return { state: 'backoff', reason: refusal.reason, retryAt: refusal.until };
    const reason = this.lastFailure;
    return { state: this.pending ? 'logging-in' : 'not-logged-in', ...(reason !== undefined ? { reason } : {}) };
  }

  /** Starts a login in the background when none is running, no token is held and no backoff is active. */
  ensureLogin(): void {
    if (this.current !== undefined || this.pending || this.activeRefusal()) return;
    // doLogin has already reported the failure to the observer.
    this.login().catch(() => undefined);
  }

  login(call?: Pick<ErpCall, 'requestId' | 'deadline'>): Promise<string> {
    const refusal = this.activeRefusal();
    if (refusal) return Promise.reject(this.backoffError(refusal));
    this.pending ??= (this.shared ? this.viaFleet(this.shared, call) : this.doLogin(call)).finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  /** A call made with `token` answered that the account itself is refused (status 4/5): same discipline as a login. */
  refused(token: string, error: ErpAuthError): void {
    if (this.current !== token) return;
    this.current = undefined;
    this.stale = token;
    this.startBackoff(error.status, this.safe(erpReason(error)));
  }

  /** The fleet's token, or this replica's own login when it is the one to log in for the fleet. */
  private async viaFleet(shared: SharedSessionStore, call?: Pick<ErpCall, 'requestId' | 'deadline'>): Promise<string> {
    const token = await shared.acquire(this.identity, this.stale, () => this.fleetLogin(shared, call));
    if (this.current !== token) {
      this.current = token;
      this.refusals = 0;
      this.refusal = undefined;
      this.lastFailure = undefined;
    }
    return token;
  }

  /**
   * This replica's login for the fleet, run within the fleet's single flight: a refusal another replica met and the
   * fleet still holds is taken over without calling the ERP; a refusal met here is recorded for the fleet (its step
   * doubled from the fleet's), a success clears the fleet's record. A store without these methods, or unreachable,
   * leaves the backoff to this replica alone.
   */
  private async fleetLogin(shared: SharedSessionStore, call?: Pick<ErpCall, 'requestId' | 'deadline'>): Promise<string> {
    const known = await shared.refusal?.(this.identity);
    if (known?.active && this.now() < known.active.until) {
      const { status, reason, until, step } = known.active;
      this.refusals = Math.max(this.refusals, step);
      this.refusal = { status, reason, until };
      this.lastFailure = reason;
      throw this.backoffError(this.refusal);
    }
    if (known) this.refusals = Math.max(this.refusals, known.step);
    let token: string;
    try {
      token = await this.doLogin(call);
    } catch (e) {
      if (e instanceof ErpAuthError && this.refusal) {
        await shared.recordRefusal?.(this.identity, { ...this.refusal, step: this.refusals }, this.backoffMaxMs + (this.refusal.until - this.now()));
      }
      throw e;
    }
    await shared.clearRefusal?.(this.identity);
    return token;
  }

  private activeRefusal(): Refusal | undefined {
    return this.refusal && this.now() < this.refusal.until ? this.refusal : undefined;
  }

  private backoffError(refusal: Refusal): ErpAuthError {
    const at = new Date(refusal.until).toISOString();
    return new ErpAuthError(`ERP refused the account (${refusal.reason}); no login before ${at}`, refusal.status);
  }

  private startBackoff(status: number, reason: string): number {
    this.refusals++;
    const pause = this.captchaPattern.test(reason) ? this.backoffMaxMs : Math.min(this.backoffMaxMs, this.backoffMs * 2 ** Math.min(this.refusals - 1, 30));
    const until = this.now() + pause;
    this.refusal = { status, reason, until };
    this.lastFailure = reason;
    this.observer.login?.(this.identity, ErpErrorCode.Auth, { reason, retryAt: until });
    return until;
  }

  /** The ERP's text, with the password cut out should the ERP ever echo it. */
  private safe(text: string): string {
    const { password } = this.credentials;
    return password ? text.split(password).join('***') : text;
  }

  private async doLogin(call?: Pick<ErpCall, 'requestId' | 'deadline'>): Promise<string> {
    let reply: ErpReply;
    try {
      reply = await this.send(loginCall(this.credentials, this.loginPath, call));
    } catch (e) {
      // Any failure status at login is the ERP refusing this account; everything else may pass by itself.
      if (e instanceof ErpHeaderStatusError) {
        const reason = this.safe(erpReason(e));
        const until = this.startBackoff(e.status, reason);
        throw new ErpAuthError(`ERP login refused (status ${e.status}): ${reason}; no login before ${new Date(until).toISOString()}`, e.status, { path: e.path });
      }
      this.lastFailure = e instanceof ErpError ? this.safe(e.message) : 'unexpected error';
      this.observer.login?.(this.identity, e instanceof ErpError ? e.code : 'error', { reason: this.lastFailure });
      throw e;
    }
    const token = reply.header.session;
    if (!token) {
      this.lastFailure = 'ERP login succeeded without a session token';
      this.observer.login?.(this.identity, ErpErrorCode.BadResponse, { reason: this.lastFailure });
      throw new ErpBadResponseError(this.lastFailure, 'shape', { path: this.loginPath });
    }
    this.current = token;
    this.refusals = 0;
    this.refusal = undefined;
    this.lastFailure = undefined;
    this.observer.login?.(this.identity, 'ok');
    return token;
  }
}
