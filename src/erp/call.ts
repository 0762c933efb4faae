import type { ErpData, ErpReply } from './types';

/**
 * One ERP call as it travels through the client's layers. Layers compose like undici's interceptors: each takes the
 * next `Send` and returns a new one, so retry, circuit breaking, limits, coalescing and caching are independent
 * pieces stacked in one place (see stack.ts).
 */
export type CallKind = 'login' | 'read' | 'write';
export type Endpoint = 'login' | 'list' | 'detail' | 'process';

/** Who the call is made as: a shared service account, or one user's own ERP session. */
export interface SessionSource {
  /** Stable and secret-free: keys for coalescing and caching, never the token itself. */
  readonly identity: string;
  token(call: ErpCall): Promise<string>;
  /** A fresh token after `stale` was refused; absent when we cannot log in for this identity. */
  renew?(stale: string, call: ErpCall): Promise<string>;
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
  /** The caller gave up: request deadline or client gone. Writes do not carry one once dispatched. */
  signal?: AbortSignal;
  /** Epoch ms after which no retry is started. */
  deadline?: number;
  requestId?: string;
}

export type Send = (call: ErpCall) => Promise<ErpReply>;
export type Layer = (next: Send) => Send;

/** `compose(a, b, c)(base)` runs a, then b, then c, then base. */
export function compose(...layers: Layer[]): (base: Send) => Send {
  return (base) => layers.reduceRight<Send>((next, layer) => layer(next), base);
}

/** The identity-scoped key of a read: same identity, endpoint, cmdkey and datas means the same answer. */
export function readKey(call: ErpCall): string {
  const datas = call.datas.map((d) => [d.id, String(d.val)]);
  return JSON.stringify([call.auth?.identity ?? '', call.path, call.cmdkey, datas]);
}
