import { Pool, errors as undiciErrors } from 'undici';
import { readEnvelope, parseReplyText } from './decode';
import { ErpAbortedError, ErpBadResponseError, ErpClosedError, ErpConnectError, ErpError, ErpHttpStatusError, ErpSocketError, ErpTimeoutError } from './errors';
import type { ErpCall, Send } from './call';
import { deadline, type Deadline } from './deadline';

export interface TransportOptions {
  baseUrl: string;
  /** Sockets per ERP origin: the natural throttle for a fragile IIS. */
  connections: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** Whole-call ceiling, including queueing for a socket. */
  totalTimeoutMs: number;
  maxResponseBytes: number;
  contentType: string;
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

function errorCode(e: unknown): string {
  return e !== null && typeof e === 'object' && 'code' in e ? String((e as { code: unknown }).code) : '';
}

/** The bottom of the stack: one POST over a keep-alive undici pool, answered as a checked envelope. */
export class ErpTransport {
  private readonly pool: Pool;
  private readonly basePath: string;

  constructor(private readonly options: TransportOptions) {
    const url = new URL(options.baseUrl);
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.pool = new Pool(url.origin, {
      connections: options.connections,
      connect: { timeout: options.connectTimeoutMs },
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      maxResponseSize: options.maxResponseBytes,
      pipelining: 1,
    });
  }

  readonly send: Send = async (call) => {
    const limit = deadline(this.options.totalTimeoutMs, call.signal);
    let text: string;
    let status: number;
    try {
      const res = await this.pool.request({
        method: 'POST',
        path: this.basePath + call.path,
        headers: { 'content-type': this.options.contentType, accept: 'application/json, text/html;q=0.5' },
        body: JSON.stringify({ session: call.session ?? '', cmdkey: call.cmdkey, datas: call.datas }),
        signal: limit.signal,
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (e) {
      throw this.classify(e, call, limit);
    } finally {
      limit.dispose();
    }
    if (status !== 200) throw tag(new ErpHttpStatusError(status), call);
    try {
      return readEnvelope(parseReplyText(text));
    } catch (e) {
      if (e instanceof ErpError) throw tag(e, call);
      throw tag(new ErpBadResponseError(`unreadable ERP reply: ${(e as Error).message}`, 'shape'), call);
    }
  };

  private classify(e: unknown, call: ErpCall, limit: Deadline): ErpError {
    const code = errorCode(e);
    if (limit.timedOut) return tag(new ErpTimeoutError(`ERP call exceeded ${this.options.totalTimeoutMs} ms`, 'total', { cause: e }), call);
    if (call.signal?.aborted) return tag(new ErpAbortedError('ERP call abandoned by its caller', true), call);
    // close() refuses new requests but lets those in flight finish: a refused one was never sent.
    if (e instanceof undiciErrors.ClientClosedError) return tag(new ErpClosedError({ cause: e }), call);
    if (CONNECT_CODES.has(code)) return tag(new ErpConnectError(`cannot connect to the ERP (${code})`, { cause: e }), call);
    if (e instanceof undiciErrors.HeadersTimeoutError) return tag(new ErpTimeoutError('ERP sent no reply headers in time', 'headers', { cause: e }), call);
    if (e instanceof undiciErrors.BodyTimeoutError) return tag(new ErpTimeoutError('ERP reply body stalled', 'body', { cause: e }), call);
    if (e instanceof undiciErrors.ResponseExceededMaxSizeError) return tag(new ErpBadResponseError('ERP reply exceeds the size limit', 'shape'), call);
    return tag(new ErpSocketError(`ERP connection failed (${code || (e as Error).message})`, { cause: e }), call);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

function tag<E extends ErpError>(e: E, call: ErpCall): E {
  e.path = call.path;
  return e;
}
