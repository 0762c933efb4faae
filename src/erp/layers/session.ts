import type { ErpCall, Layer, Send, SessionSource } from '../call';
import { ErpAuthError, ErpBadResponseError, ErpSessionError, ErpStatusError } from '../errors';
import type { ErpObserver } from '../observer';

/**
 * Puts the caller's session token into the call. When the ERP refuses the session, the source may renew it once and
 * the call is sent once more; a second refusal surfaces. The ERP checks the session before it does anything, so the
 * repeat is safe even for a save.
 */
export function withSession(): Layer {
  return (next) => async (call) => {
    const auth = call.auth;
    if (call.kind === 'login' || !auth) return next(call);
    const token = await auth.token(call);
    try {
      return await next({ ...call, session: token });
    } catch (e) {
      if (!(e instanceof ErpSessionError) || !auth.renew) throw e;
      const fresh = await auth.renew(token, call);
      return next({ ...call, session: fresh });
    }
  };
}

export interface Credentials {
  user: string;
  password: string;
  serialnum: string;
}

/**
 * One shared ERP session for a service account. Concurrent callers that need a login share a single one
 * (single-flight), so an expired session never causes a login storm.
 */
export class ServiceAccountSession implements SessionSource {
  readonly identity: string;
  private current: string | undefined;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly send: Send,
    private readonly credentials: Credentials,
    private readonly loginPath: string,
    private readonly observer: ErpObserver = {},
  ) {
    this.identity = `service:${credentials.user}`;
  }

  token(call: ErpCall): Promise<string> {
    return this.current !== undefined ? Promise.resolve(this.current) : this.login(call);
  }

  renew(stale: string, call: ErpCall): Promise<string> {
    // Someone else already replaced the refused token: use theirs rather than log in again.
    if (this.current !== undefined && this.current !== stale) return Promise.resolve(this.current);
    this.current = undefined;
    return this.login(call);
  }

  /** Whether a login has succeeded and its token is held (readiness). */
  get hasSession(): boolean {
    return this.current !== undefined;
  }

  login(call?: Pick<ErpCall, 'requestId' | 'deadline'>): Promise<string> {
    this.pending ??= this.doLogin(call).finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async doLogin(call?: Pick<ErpCall, 'requestId' | 'deadline'>): Promise<string> {
    const { user, password, serialnum } = this.credentials;
    try {
      const reply = await this.send({
        endpoint: 'login',
        path: this.loginPath,
        kind: 'login',
        cmdkey: '',
        datas: [
          { id: 'user', val: `txt:${user}` },
          { id: 'password', val: `txt:${password}` },
          { id: 'serialnum', val: `txt:${serialnum}` },
        ],
        // Shared by every waiting caller, so no single caller's abort signal applies.
        ...(call?.requestId ? { requestId: call.requestId } : {}),
        ...(call?.deadline ? { deadline: call.deadline } : {}),
      });
      const token = reply.header.session;
      if (!token) throw new ErpBadResponseError('ERP login succeeded without a session token', 'shape');
      this.current = token;
      this.observer.login?.(this.identity, 'ok');
      return token;
    } catch (e) {
      const failure = e instanceof ErpStatusError || e instanceof ErpSessionError ? new ErpAuthError(`ERP login refused: ${e.message}`, e.status) : e;
      this.observer.login?.(this.identity, failure instanceof ErpAuthError ? failure.code : 'error');
      throw failure;
    }
  }
}

/**
 * A user's own ERP session forwarded by the gateway. We hold no password for it, so a refused session is final and
 * surfaces to the caller as unauthenticated.
 */
export class ForwardedSession implements SessionSource {
  readonly identity: string;

  constructor(
    private readonly tokenValue: string,
    identityHash: string,
  ) {
    this.identity = `user:${identityHash}`;
  }

  token(): Promise<string> {
    return Promise.resolve(this.tokenValue);
  }
}
