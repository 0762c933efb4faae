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

/** What the transport tells about each reply it read off the wire (the stack's attempt spans take status and size). */
export interface WireObserver {
  /** `call` was answered with HTTP `status` and `text`; `contentLength` is the header's value, when one was sent. */
  reply?(call: ErpCall, status: number, text: string, contentLength: string | string[] | undefined): void;
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

function errorCode(e: unknown): string {
  return e !== null && typeof e === 'object' && 'code' in e ? String((e as { code: unknown }).code) : '';
}

/** The bottom of the stack: one POST over a keep-alive undici pool, answered as a checked envelope. */
export class ErpTransport {
  private readonly pool: Pool;
  private readonly basePath: string;

  constructor(
    private readonly options: TransportOptions,
    private readonly wire: WireObserver = {},
  ) {
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
    let contentLength: string | string[] | undefined;
    try {
      const res = await this.pool.request({
        method: 'POST',
        path: this.basePath + call.path,
        headers: { 'content-type': this.options.contentType, accept: 'application/json, text/html;q=0.5' },
        body: JSON.stringify({ session: call.session ?? '', cmdkey: call.cmdkey, datas: call.datas }),
        signal: limit.signal,
      });
      status = res.statusCode;
      contentLength = res.headers['content-length'];
      text = await res.body.text();
    } catch (e) {
      throw this.classify(e, call, limit);
    } finally {
      limit.dispose();
    }
    this.wire.reply?.(call, status, text, contentLength);
    if (status !== 200) throw new ErpHttpStatusError(status, { path: call.path });
    try {
      return readEnvelope(parseReplyText(text, call.path), call.path);
    } catch (e) {
      if (e instanceof ErpError) throw e;
      throw new ErpBadResponseError(`unreadable ERP reply: ${(e as Error).message}`, 'shape', { path: call.path });
    }
  };

  private classify(e: unknown, call: ErpCall, limit: Deadline): ErpError {
    const code = errorCode(e);
    const path = call.path;
    if (limit.timedOut) return new ErpTimeoutError(`ERP call exceeded ${this.options.totalTimeoutMs} ms`, 'total', { path, cause: e });
    if (call.signal?.aborted) return new ErpAbortedError({ phase: 'sent', path });
    // close() refuses new requests but lets those in flight finish: a refused one was never sent.
    if (e instanceof undiciErrors.ClientClosedError) return new ErpClosedError({ path, cause: e });
    if (CONNECT_CODES.has(code)) return new ErpConnectError(`cannot connect to the ERP (${code})`, { path, cause: e });
    if (e instanceof undiciErrors.HeadersTimeoutError) return new ErpTimeoutError('ERP sent no reply headers in time', 'headers', { path, cause: e });
    if (e instanceof undiciErrors.BodyTimeoutError) return new ErpTimeoutError('ERP reply body stalled', 'body', { path, cause: e });
    if (e instanceof undiciErrors.ResponseExceededMaxSizeError) return new ErpBadResponseError('ERP reply exceeds the size limit', 'shape', { path });
    return new ErpSocketError(`ERP connection failed (${code || (e as Error).message})`, { path, cause: e });
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
