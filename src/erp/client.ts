import { cancelOf, type CallSignal } from './abort';
import type { CallKind, Endpoint, ErpCall, Send, SessionSource } from './call';
import { decodeDetail, decodeMessage, decodeTable } from './decode';
import type { ErpData, ErpDetail, ErpMessage, ErpTable } from './types';
import { UnreachableCaseError } from './unreachable';

/**
 * The ERP's endpoints as requests: every request envelope (ERP-PROTOCOL.md §2) is made here, the login's included, and
 * nowhere else. What the layers do with a call follows from its `kind`, which follows from its endpoint.
 */
export interface ErpPaths {
  login: string;
  list: string;
  detail: string;
  process: string;
}

export const DEFAULT_PATHS: ErpPaths = {
  login: '/webapi/v3/ov1/login',
  list: '/sysa/mobilephone/salesmanage/service/list.asp',
  detail: '/sysa/mobilephone/salesmanage/service/add.asp',
  process: '/sysa/mobilephone/salesmanage/service/chuli.asp',
};

/** A service account (ZB_USER, ZB_PASSWORD, ZB_SERIALNUM). */
export interface Credentials {
  user: string;
  password: string;
  serialnum: string;
}

/** Who is calling and until when: one per GraphQL request. */
export interface CallContext {
  auth: SessionSource;
  /** The request's abort: its AbortSignal, or the Cancel of its deadline (deadline.ts). */
  signal?: CallSignal;
  deadline?: number;
  requestId?: string;
  /**
   * The end user behind the request, as the gateway names them (`x-zb-user`), when it does. Scopes idempotency keys:
   * `auth.identity` changes with every renewed session token, the user does not. Not sent to the ERP.
   */
  principal?: string;
  /** Reads from the ERP itself, never from the read cache (whose answers they refresh): ErpCall.fresh. */
  fresh?: boolean;
}

/** Each endpoint's kind (retried? cached? fenced?) and cmdkey: a new endpoint does not compile until it is placed. */
function envelope(endpoint: Endpoint): { kind: CallKind; cmdkey: string } {
  switch (endpoint) {
    case 'login':
      return { kind: 'login', cmdkey: '' };
    case 'list':
      return { kind: 'read', cmdkey: 'refresh' };
    case 'detail':
      // No cmdkey: the page's initial load, which for a detail page is the record.
      return { kind: 'read', cmdkey: '' };
    case 'process':
      return { kind: 'write', cmdkey: '__sys_dosave' };
    default:
      throw new UnreachableCaseError(endpoint);
  }
}

/**
 * The login (ERP-PROTOCOL.md §4): plain-text credentials (`txt:`), no session. A login is shared by every caller
 * waiting for it, so it carries the first caller's request id and deadline but no caller's abort signal.
 */
export function loginCall(credentials: Credentials, path: string, from: Pick<ErpCall, 'requestId' | 'deadline'> = {}): ErpCall {
  return {
    endpoint: 'login',
    path,
    ...envelope('login'),
    datas: [
      { id: 'user', val: `txt:${credentials.user}` },
      { id: 'password', val: `txt:${credentials.password}` },
      { id: 'serialnum', val: `txt:${credentials.serialnum}` },
    ],
    ...(from.requestId ? { requestId: from.requestId } : {}),
    ...(from.deadline ? { deadline: from.deadline } : {}),
  };
}

/** The three after-sales endpoints as typed operations over the layered `Send`. */
export class ErpClient {
  constructor(
    private readonly send: Send,
    readonly paths: ErpPaths = DEFAULT_PATHS,
  ) {}

  private call(ctx: CallContext, endpoint: Exclude<Endpoint, 'login'>, datas: ErpData[]): ErpCall {
    const { kind, cmdkey } = envelope(endpoint);
    const call: ErpCall = { endpoint, path: this.paths[endpoint], kind, cmdkey, datas, auth: ctx.auth };
    // A save, once sent, must not be abandoned half-way by a client that went away. The request's signal gets one
    // listener for all of its calls (abort.ts).
    if (ctx.signal && kind === 'read') call.signal = cancelOf(ctx.signal);
    if (ctx.deadline !== undefined) call.deadline = ctx.deadline;
    if (ctx.requestId) call.requestId = ctx.requestId;
    if (ctx.fresh && kind === 'read') call.fresh = true;
    return call;
  }

  /** list.asp with `cmdkey: refresh`: one page of the after-sales list. */
  async list(ctx: CallContext, datas: ErpData[]): Promise<ErpTable> {
    const call = this.call(ctx, 'list', datas);
    return decodeTable(await this.send(call), call.path);
  }

  /** add.asp with `ord` and no cmdkey: the record as a bill, or the message that says it is gone. */
  async detail(ctx: CallContext, ord: string): Promise<ErpDetail> {
    const call = this.call(ctx, 'detail', [{ id: 'ord', val: ord }]);
    return decodeDetail(await this.send(call), call.path);
  }

  /** chuli.asp with `cmdkey: __sys_dosave`: never retried, never coalesced, never cached. */
  async process(ctx: CallContext, datas: ErpData[]): Promise<ErpMessage> {
    const call = this.call(ctx, 'process', datas);
    return decodeMessage(await this.send(call), call.path);
  }
}
