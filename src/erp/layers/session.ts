import type { ErpCall, ErpLayer, SessionSource } from '../call';
import { ErpAuthError, ErpSessionError } from '../errors';
import type { ErpReply } from '../types';

// The session kinds, importable with the layer that applies them (the server and tests take them from here).
export type { Credentials } from '../client';
export { ServiceAccountSession, type ServiceSessionOptions, type SessionState, type SessionStatus } from '../service-account';

/**
 * Puts the caller's session token into the call. When the ERP refuses the session, the source may renew it once and
 * the call is sent once more; a second refusal surfaces. The ERP checks the session before it does anything, so the
 * repeat is safe even for a save. Logins pass through untouched: they are how a source gets its token.
 */
export function withSession(): ErpLayer {
  return {
    wrap: (next) => {
      const refused = async (call: ErpCall, auth: SessionSource, token: string, e: unknown): Promise<ErpReply> => {
        // The account itself is refused: a source that logs in stops using it (and backs off) instead of retrying.
        if (e instanceof ErpAuthError) auth.refused?.(token, e);
        if (!(e instanceof ErpSessionError) || !auth.renew) throw e;
        const fresh = await auth.renew(token, call);
        return next({ ...call, session: fresh });
      };
      const send = (call: ErpCall, auth: SessionSource, token: string): Promise<ErpReply> =>
        next({ ...call, session: token }).then(undefined, (e: unknown) => refused(call, auth, token, e));
      return (call) => {
        const auth = call.auth;
        if (call.kind === 'login' || !auth) return next(call);
        // A token already held goes in at once; only a call that must wait for a login waits for a promise.
        const held = auth.held?.();
        return held !== undefined ? send(call, auth, held) : auth.token(call).then((token) => send(call, auth, token));
      };
    },
  };
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

  held(): string {
    return this.tokenValue;
  }
}
