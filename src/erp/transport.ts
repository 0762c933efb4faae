import type { IncomingHttpHeaders } from 'node:http';
import { context, ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import { cancelOf, type Cancel } from './abort';
import type { ErpCall, Send } from './call';
import { readEnvelope, parseReplyText } from './decode';
import { ErpAbortedError, ErpBadResponseError, ErpClosedError, ErpConnectError, ErpError, ErpHttpStatusError, ErpSocketError, ErpTimeoutError } from './errors';
import { ExpiryQueue, type Expiring } from './expiry';
import type { ErpReply } from './types';

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
  /** One attempt on the wire ended: `outcome` is 'ok' or the ErpError code (the stack's logs and metrics). */
  attempt?(call: ErpCall, outcome: string, durationMs: number): void;
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

function errorCode(e: unknown): string {
  return e !== null && typeof e === 'object' && 'code' in e ? String((e as { code: unknown }).code) : '';
}

/** undici refuses to dispatch after it was told to stop (close() lets those in flight finish). */
const stopped = (e: unknown) => e instanceof undiciErrors.ClientClosedError || e instanceof undiciErrors.ClientDestroyedError;

/** What an attempt needs of its transport. */
interface Wire {
  /** The attempts on the wire, oldest first, each until its total time limit. */
  readonly attempts: ExpiryQueue<Attempt>;
  /** A reply read off the wire whole: checked and parsed, or the error it is. */
  answer(call: ErpCall, status: number, text: string, contentLength: string | string[] | undefined): ErpReply;
  /** What undici's failure of an attempt means for the caller. */
  failure(e: unknown, call: ErpCall): ErpError;
  timedOut(call: ErpCall): ErpTimeoutError;
  readonly observer: WireObserver;
}

/**
 * The bottom of the stack: one POST over a keep-alive undici pool, answered as a checked envelope.
 *
 * Each attempt is an undici dispatch handler that collects the reply's bytes itself (no response stream, no abort
 * signal of its own). Its time limit (ZB_TIMEOUT_MS, queueing for a socket included) is kept by the transport's
 * one expiry timer (expiry.ts), and its caller's abort reaches it through the call's signal (abort.ts): no timer and
 * no AbortController per call. Headers and body stall limits are undici's own (its coarse shared clock).
 */
export class ErpTransport {
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly headers: Record<string, string>;
  private readonly wire: Wire;

  constructor(options: TransportOptions, observer: WireObserver = {}) {
    const url = new URL(options.baseUrl);
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.headers = { 'content-type': options.contentType, accept: 'application/json, text/html;q=0.5' };
    this.pool = new Pool(url.origin, {
      connections: options.connections,
      connect: { timeout: options.connectTimeoutMs },
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      maxResponseSize: options.maxResponseBytes,
      pipelining: 1,
    });
    this.wire = {
      attempts: new ExpiryQueue(options.totalTimeoutMs),
      answer: (call, status, text, contentLength) => {
        observer.reply?.(call, status, text, contentLength);
        if (status !== 200) throw new ErpHttpStatusError(status, { path: call.path });
        try {
          return readEnvelope(parseReplyText(text, call.path), call.path);
        } catch (e) {
          if (e instanceof ErpError) throw e;
          throw new ErpBadResponseError(`unreadable ERP reply: ${(e as Error).message}`, 'shape', { path: call.path });
        }
      },
      failure: classify,
      observer,
      timedOut: (call) => new ErpTimeoutError(`ERP call exceeded ${options.totalTimeoutMs} ms`, 'total', { path: call.path }),
    };
  }

  readonly send: Send = (call) =>
    new Promise<ErpReply>((resolve, reject) => {
      const attempt = new Attempt(this.wire, call, resolve, reject);
      if (call.signal?.aborted) {
        attempt.fail(new ErpAbortedError({ phase: 'sent', path: call.path }));
        return;
      }
      attempt.start();
      this.pool.dispatch(
        {
          method: 'POST',
          path: this.basePath + call.path,
          headers: this.headers,
          body: JSON.stringify({ session: call.session ?? '', cmdkey: call.cmdkey, datas: call.datas }),
        },
        attempt,
      );
    });

  async close(): Promise<void> {
    await this.pool.close();
  }
}

function classify(e: unknown, call: ErpCall): ErpError {
  const code = errorCode(e);
  const path = call.path;
  // close() refuses new requests but lets those in flight finish: a refused one was never sent.
  if (stopped(e)) return new ErpClosedError({ path, cause: e });
  if (CONNECT_CODES.has(code)) return new ErpConnectError(`cannot connect to the ERP (${code})`, { path, cause: e });
  if (e instanceof undiciErrors.HeadersTimeoutError) return new ErpTimeoutError('ERP sent no reply headers in time', 'headers', { path, cause: e });
  if (e instanceof undiciErrors.BodyTimeoutError) return new ErpTimeoutError('ERP reply body stalled', 'body', { path, cause: e });
  if (e instanceof undiciErrors.ResponseExceededMaxSizeError) return new ErpBadResponseError('ERP reply exceeds the size limit', 'shape', { path });
  return new ErpSocketError(`ERP connection failed (${code || (e as Error).message})`, { path, cause: e });
}

/**
 * One attempt on the wire, as undici's dispatch handler. It settles its caller's promise exactly once: with the
 * reply, undici's error, its time limit or its caller's abort, whichever comes first; after a limit or an abort the
 * request is aborted in undici (at once, or when undici starts it if it is still waiting for a socket). Its outcome
 * and duration are reported as it settles (the stack's logs and metrics), where a layer of its own would cost a
 * promise and two closures per attempt.
 */
class Attempt implements Dispatcher.DispatchHandler, Expiring {
  expiresAt = 0;
  private settled = false;
  private controller: Dispatcher.DispatchController | undefined;
  private abandoned: Error | undefined;
  private status = 0;
  private contentLength: string | string[] | undefined;
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private cancel: Cancel | undefined;
  private readonly started = performance.now();
  /**
   * The trace context the attempt was sent in: undici calls back outside it, and the report (a log line with the
   * trace id) belongs to the call's trace. Without a tracing SDK this is the root context and costs nothing.
   */
  private readonly context: Context;

  constructor(
    private readonly wire: Wire,
    private readonly call: ErpCall,
    private readonly resolve: (reply: ErpReply) => void,
    private readonly reject: (error: ErpError) => void,
  ) {
    this.context = wire.observer.attempt ? context.active() : ROOT_CONTEXT;
  }

  start(): void {
    this.wire.attempts.add(this);
    if (this.call.signal) {
      this.cancel = cancelOf(this.call.signal);
      this.cancel.watch(this.onAbort);
    }
  }

  fail(error: ErpError): void {
    if (!this.settle()) return;
    this.report(error.code);
    this.reject(error);
  }

  private report(outcome: string): void {
    const attempt = this.wire.observer.attempt;
    if (!attempt) return;
    const ms = performance.now() - this.started;
    if (this.context === ROOT_CONTEXT) attempt(this.call, outcome, ms);
    else context.with(this.context, attempt, undefined, this.call, outcome, ms);
  }

  /** Marks the attempt settled (false when it already was) and lets go of its time limit and abort watch. */
  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.wire.attempts.delete(this);
    this.cancel?.unwatch(this.onAbort);
    return true;
  }

  expire(): void {
    // Already out of the expiry queue.
    this.abandon(this.wire.timedOut(this.call));
  }

  private readonly onAbort = (): void => {
    this.abandon(new ErpAbortedError({ phase: 'sent', path: this.call.path }));
  };

  private abandon(error: ErpError): void {
    if (this.settled) return;
    this.fail(error);
    this.abandoned = error;
    this.controller?.abort(error);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.abandoned) controller.abort(this.abandoned);
    else this.controller = controller;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.status = statusCode;
    this.contentLength = headers['content-length'];
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  onResponseEnd(): void {
    if (!this.settle()) return;
    const chunks = this.chunks;
    const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, this.bytes).toString('utf8');
    let reply: ErpReply;
    try {
      reply = this.wire.answer(this.call, this.status, text, this.contentLength);
    } catch (e) {
      const error = e as ErpError;
      this.report(error.code);
      this.reject(error);
      return;
    }
    this.report('ok');
    this.resolve(reply);
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    this.fail(this.wire.failure(error, this.call));
  }
}
