import { createHash } from 'node:crypto';
import type { ErpCall, SessionSource } from '../erp/call';
import { ErpSessionError } from '../erp/errors';
import { ForwardedSession, type ServiceAccountSession } from '../erp/layers/session';

export const SESSION_HEADER = 'x-zb-session';
/** The ERP user the gateway authenticated, forwarded beside the session: scopes idempotency keys across token renewals. */
export const USER_HEADER = 'x-zb-user';

/** Who a request acts as. `refused` says why there is no usable ERP identity; the operation decides if it needs one. */
export interface RequestIdentity {
  auth: SessionSource;
  /** The stable ERP user behind the session, when known; idempotency keys are scoped to it. */
  principal: string;
  refused?: string;
}

/**
 * Stands in for a missing or blank session: any ERP call it would make fails as an invalid session (UNAUTHENTICATED),
 * never falling back to the service account. Operations that need the ERP are refused before execution anyway.
 */
class RefusedSession implements SessionSource {
  readonly identity = 'refused';
  constructor(private readonly reason: string) {}
  token(call: ErpCall): Promise<string> {
    return Promise.reject(new ErpSessionError(this.reason, 15, { path: call.path }));
  }
}

const PLAIN_USER = /^[\w.@-]{1,64}$/;

/**
 * Request headers by lower-case name, as every transport has them: node's `req.headers` (HTTP, and the WebSocket
 * upgrade request), or a record a transport builds (graphql-ws `connection_init` payload keys, see
 * `connectionHeaders`). A repeated header is an array.
 */
export type HeaderRecord = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface IdentityOptions {
  required: boolean;
  service: ServiceAccountSession | undefined;
  trustUserHeader: boolean;
}

/**
 * `trustUserHeader` (ZB_TRUST_USER_HEADER) is for a gateway that sets `x-zb-user` from its own authentication and strips
 * it from clients: anyone who reaches the subgraph directly could otherwise name another user and replay that user's
 * idempotent payloads. Untrusted, keys are scoped to the session token.
 */
export function identityOf(headers: HeaderRecord, options: IdentityOptions): RequestIdentity {
  const forwarded = headers[SESSION_HEADER];
  if (forwarded !== undefined) {
    // A header that is present but blank is a gateway bug or a probe: refuse it rather than act as the service account.
    if (typeof forwarded !== 'string' || forwarded.trim() === '') return refused(`The ${SESSION_HEADER} header is blank or repeated.`);
    const token = forwarded.trim();
    // The identity key is a hash: caches and logs never hold the token.
    const session = new ForwardedSession(token, createHash('sha256').update(token).digest('hex').slice(0, 24));
    const user = options.trustUserHeader ? headers[USER_HEADER] : undefined;
    const principal = typeof user === 'string' && PLAIN_USER.test(user.trim()) ? `erp-user:${user.trim()}` : session.identity;
    return { auth: session, principal };
  }
  if (options.required || !options.service) return refused(`This endpoint requires the ${SESSION_HEADER} header (an ERP session token).`);
  return { auth: options.service, principal: options.service.identity };
}

function refused(reason: string): RequestIdentity {
  return { auth: new RefusedSession(reason), principal: 'refused', refused: reason };
}

/**
 * The headers a WebSocket subscriber acts with: its upgrade request's, and the `connection_init` payload's
 * `x-zb-session` / `x-zb-user` keys (browsers cannot set headers on a WebSocket; gateways forward either). The same
 * value in both places is one identity; two different values, or a payload value that is not a string, are refused
 * (as a repeated header is): never a guess between two users, never the service account instead.
 */
export function connectionHeaders(upgrade: HeaderRecord, payload: Readonly<Record<string, unknown>> | undefined): HeaderRecord {
  const merged: Record<string, string | readonly string[] | undefined> = { ...upgrade };
  for (const name of [SESSION_HEADER, USER_HEADER]) {
    if (!payload || !(name in payload)) continue;
    const given = payload[name];
    const fromUpgrade = merged[name];
    const agrees = typeof given === 'string' && (fromUpgrade === undefined || fromUpgrade === given);
    // A list reads as "repeated": identityOf refuses it for the session, and ignores it as a user name.
    merged[name] = agrees ? given : ['conflicting or not a string'];
  }
  return merged;
}
