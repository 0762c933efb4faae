import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { ApolloServerErrorCode } from '@apollo/server/errors';

/** The HTTP edge: what a client can hold open, for how long, and how much of its body we buffer. */
export interface HttpLimits {
  /** Largest request body, bytes (413 above). */
  bodyLimitBytes: number;
  /** Headers and body must arrive within this (408 and the connection closed otherwise). */
  bodyTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Open client connections; more are dropped on accept. */
  maxConnections: number;
  /** Longest time one request may legitimately take (a save plus its re-read), for the socket inactivity limit. */
  longestRequestMs: number;
}

export class BodyTooLargeError extends Error {}
export class BodyTimeoutError extends Error {}

/**
 * A server whose every connection is bounded in time and number. Node's own `headersTimeout`/`requestTimeout` are
 * checked only every `connectionsCheckingInterval`, so that runs every second; the body read below has its own exact
 * timer as well. Sockets idle for longer than any request can take are closed, so a client that opens connections and
 * sends nothing cannot exhaust file descriptors.
 */
export function createHttpServer(limits: HttpLimits): http.Server {
  const server = http.createServer({
    headersTimeout: limits.bodyTimeoutMs,
    requestTimeout: limits.bodyTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, limits.bodyTimeoutMs),
  });
  server.maxConnections = limits.maxConnections;
  server.timeout = limits.longestRequestMs + limits.bodyTimeoutMs;
  return server;
}

/**
 * Reads a request body up to `limit` bytes within `timeoutMs`. Nothing is retained beyond the limit; a body that
 * trickles in too slowly fails with BodyTimeoutError (the caller answers 408 and closes the connection).
 */
export function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (error: Error | undefined, text?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.off('data', onData);
      chunks.length = 0;
      if (error) {
        // Stop buffering; whatever else arrives is discarded.
        req.resume();
        reject(error);
      } else resolve(text ?? '');
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return finish(new BodyTooLargeError());
      chunks.push(chunk);
    };
    const timer = setTimeout(() => finish(new BodyTimeoutError()), timeoutMs);
    timer.unref();
    req.on('data', onData);
    req.on('end', () => finish(undefined, Buffer.concat(chunks).toString('utf8')));
    req.on('error', (e) => finish(e));
  });
}

/** Why a request body was refused before anything ran: the reason label of `zb_graphql_refused_total`. */
export type BodyRefusal = 'body_too_large' | 'body_timeout';

/**
 * A POST's body within the limits, or undefined once the request has been answered: 413 over `bodyLimitBytes`, 408
 * when it is not all there within `bodyTimeoutMs` (both close the connection, whose rest is discarded). The one place
 * both GraphQL endpoints (POST /graphql, the SSE route) read a body; `refused` hears why one was turned away.
 */
export async function readBodyOrRefuse(
  req: IncomingMessage,
  res: ServerResponse,
  limits: { bodyLimitBytes: number; bodyTimeoutMs: number },
  refused: (reason: BodyRefusal) => void = () => undefined,
): Promise<string | undefined> {
  try {
    return await readBody(req, limits.bodyLimitBytes, limits.bodyTimeoutMs);
  } catch (e) {
    if (e instanceof BodyTooLargeError) {
      refused('body_too_large');
      sendJson(res, 413, requestErrorBody(`Request body exceeds ${limits.bodyLimitBytes} bytes`, ApolloServerErrorCode.BAD_REQUEST), { connection: 'close' });
      return undefined;
    }
    if (e instanceof BodyTimeoutError) {
      refused('body_timeout');
      sendJson(res, 408, requestErrorBody(`Request body not received within ${limits.bodyTimeoutMs} ms`, ApolloServerErrorCode.BAD_REQUEST), { connection: 'close' });
      return undefined;
    }
    throw e;
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** The body of an error answered before GraphQL runs, in the GraphQL response shape. */
export function requestErrorBody(message: string, code: string) {
  return { errors: [{ message, extensions: { code } }] };
}
