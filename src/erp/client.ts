import type { Endpoint, ErpCall, Send, SessionSource } from './call';
import { decodeDetail, decodeMessage, decodeTable } from './decode';
import type { ErpData, ErpDetail, ErpMessage, ErpTable } from './types';

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

/** Who is calling and until when: one per GraphQL request. */
export interface CallContext {
  auth: SessionSource;
  signal?: AbortSignal;
  deadline?: number;
  requestId?: string;
  /**
   * The end user behind the request, as the gateway names them (`x-zb-user`), when it does. Scopes idempotency keys:
   * `auth.identity` changes with every renewed session token, the user does not. Not sent to the ERP.
   */
  principal?: string;
}

/** The three after-sales endpoints as typed operations over the layered `Send`. */
export class ErpClient {
  constructor(
    private readonly send: Send,
    readonly paths: ErpPaths = DEFAULT_PATHS,
  ) {}

  private call(ctx: CallContext, endpoint: Exclude<Endpoint, 'login'>, kind: 'read' | 'write', cmdkey: string, datas: ErpData[]): ErpCall {
    return {
      endpoint,
      path: this.paths[endpoint],
      kind,
      cmdkey,
      datas,
      auth: ctx.auth,
      // A save, once sent, must not be abandoned half-way by a client that went away.
      ...(ctx.signal && kind === 'read' ? { signal: ctx.signal } : {}),
      ...(ctx.deadline !== undefined ? { deadline: ctx.deadline } : {}),
      ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
    };
  }

  /** list.asp with `cmdkey: refresh`: one page of the after-sales list. */
  async list(ctx: CallContext, datas: ErpData[]): Promise<ErpTable> {
    return decodeTable(await this.send(this.call(ctx, 'list', 'read', 'refresh', datas)));
  }

  /** add.asp with `ord` and no cmdkey: the record as a bill, or the message that says it is gone. */
  async detail(ctx: CallContext, ord: string): Promise<ErpDetail> {
    return decodeDetail(await this.send(this.call(ctx, 'detail', 'read', '', [{ id: 'ord', val: ord }])));
  }

  /** chuli.asp with `cmdkey: __sys_dosave`: never retried, never coalesced, never cached. */
  async process(ctx: CallContext, datas: ErpData[]): Promise<ErpMessage> {
    return decodeMessage(await this.send(this.call(ctx, 'process', 'write', '__sys_dosave', datas)));
  }
}
