import type { CallSignal } from './abort';
import type { ErpAuthError } from './errors';
import type { ErpData, ErpReply } from './types';

/** One ERP call as it travels through the client's layers (stack.ts). */
export type CallKind = 'login' | 'read' | 'write';
export type Endpoint = 'login' | 'list' | 'detail' | 'process';

/** Who the call is made as: a shared service account, or one user's own ERP session. */
export interface SessionSource {
  /** Stable and secret-free: keys for coalescing and caching, never the token itself. */
  readonly identity: string;
  token(call: ErpCall): Promise<string>;
  /** The token held right now, when one is (what `token` would resolve to without logging in); lets a call skip a promise. */
  held?(): string | undefined;
  /** A fresh token after `stale` was refused; absent when we cannot log in for this identity. */
  renew?(stale: string, call: ErpCall): Promise<string>;
  /** A call made with `token` answered that the account itself is refused (status 4/5); absent when nothing follows. */
  refused?(token: string, error: ErpAuthError): void;
}

export interface ErpCall {
  endpoint: Endpoint;
  path: string;
  kind: CallKind;
  cmdkey: string;
  datas: ErpData[];
  auth?: SessionSource;
  /** Filled in by the session layer. */
  session?: string;
  /**
   * The caller gave up: request deadline or client gone. Writes do not carry one once dispatched. Read `aborted`;
   * listen through `cancelOf(signal).watch()` (abort.ts), never addEventListener.
   */
  signal?: CallSignal;
  /** Epoch ms after which no retry is started. */
  deadline?: number;
  requestId?: string;
  /**
   * A read that must come from the ERP (a change-feed poll, which exists to see what changed): the read cache does not
   * answer it, but keeps its answer for the reads that may be answered from it.
   */
  fresh?: boolean;
}

export type Send = (call: ErpCall) => Promise<ErpReply>;

/**
 * The one shape of a layer: like an undici interceptor it takes the next `Send` and returns a new one, so retry,
 * circuit breaking, limits, coalescing and caching are independent pieces; `close()` is for a layer that holds
 * something to let go of at shutdown. A layer may expose more (the breaker's state, the cache's invalidation), but the
 * stack composes and closes every layer through this shape alone.
 *
 * Every ERP call travels every layer, 21 times for a page of 20 with detail fields, so a layer costs nothing for a
 * call it has nothing to do with: it hands the call on with a plain function call (no async function, no promise or
 * closure of its own), and a layer with nothing to do at all (tracing with no SDK registered) returns `next` itself.
 */
export interface ErpLayer {
  wrap(next: Send): Send;
  close?(): void | Promise<void>;
}

/**
 * `compose(a, b, c)(base)` runs a, then b, then c, then base: outermost first, as written and as a call travels.
 * (undici's `Dispatcher.compose` nests the other way round: there the last interceptor listed runs first.)
 */
export function compose(...layers: ErpLayer[]): (base: Send) => Send {
  return (base) => layers.reduceRight<Send>((next, layer) => layer.wrap(next), base);
}

/**
 * The same call (or call context) without the caller's abort signal: for work nobody in particular waits for, or that
 * must not be cut short by one caller leaving (a shared read, a background refresh, a save's confirming re-read).
 */
export function detached<T extends { signal?: CallSignal }>(call: T): Omit<T, 'signal'> {
  const { signal: _signal, ...rest } = call;
  return rest;
}

/**
 * The identity-scoped key of a read: same identity, endpoint, cmdkey and datas means the same answer. JSON string
 * literals, one after the other: each closes itself, so the key is unambiguous (made for every read: no arrays).
 */
export function readKey(call: ErpCall): string {
  let key = JSON.stringify(call.auth?.identity ?? '') + JSON.stringify(call.path) + JSON.stringify(call.cmdkey);
  for (const d of call.datas) key += JSON.stringify(d.id) + JSON.stringify(String(d.val));
  return key;
}
