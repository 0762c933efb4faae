import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { ApolloServerErrorCode } from '@apollo/server/errors';
import {
  getOperationAST,
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import type { Context } from 'graphql-ws';
import { useServer, type Extra } from 'graphql-ws/use/ws';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { connectionHeaders } from './identity';
import type { SubscriptionContextFactory } from './subscription-context';

/**
 * Subscriptions over WebSocket, the `graphql-transport-ws` protocol (graphql-ws), at the GraphQL path of the same HTTP
 * server: what Apollo Router's passthrough mode and Hive Gateway's `ws` transport speak. A thin transport: the schema
 * and the subscription context builder (subscription-context.ts) do the work; this module bounds the connections
 * and documents, carries identity from the upgrade and `connection_init`, and closes cleanly on shutdown.
 */
export interface WsLimits {
  /** ZB_FEED_WS_MAX_CONNECTIONS: open WebSocket connections; more upgrades are answered 503. */
  maxConnections: number;
  /** ZB_FEED_WS_INIT_TIMEOUT_MS: `connection_init` must arrive within this (else close 4408). */
  initTimeoutMs: number;
  /** Largest message a client may send (ZB_BODY_LIMIT_BYTES, as a request body); larger closes the socket with 1009. */
  maxPayloadBytes: number;
  /** Ping period; a peer that does not answer within it is dropped. */
  keepAliveMs: number;
  /** graphql-js parser token limit (ZB_MAX_TOKENS), as on HTTP. */
  maxTokens: number;
}

export interface WsTransportOptions {
  server: http.Server;
  /** `/graphql`: the same path as HTTP. */
  path: string;
  schema: GraphQLSchema;
  context: SubscriptionContextFactory;
  /** The HTTP endpoint's document limits (graphql-armor: depth, aliases, cost, directives). */
  validationRules: readonly ValidationRule[];
  /** The HTTP endpoint's error formatter: every error leaves with its `extensions.code`, masked when unexpected. */
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  limits: WsLimits;
  production: boolean;
  logger: Logger;
  onConnections?: (open: number) => void;
}

export interface WsTransport {
  /** Open WebSocket connections. */
  readonly connections: number;
  /** Subscriptions being served over all connections. */
  readonly subscriptions: number;
  /** New upgrades are refused from now on (503); existing connections go on. */
  refuseNew(): void;
  /**
   * After the feed ended its subscriptions: waits (up to `graceMs`) for their `complete` messages to go out, then
   * closes every connection with 1001 (going away: clients reconnect) and, after another `graceMs`, drops those that
   * did not close.
   */
  close(graceMs: number): Promise<void>;
}

type Ctx = Context<Record<string, unknown> | undefined, Extra & Partial<Record<PropertyKey, never>>>;

function reject(socket: Duplex, status: number, reason: string, headers: Record<string, string> = {}): void {
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n${extra}\r\n`);
}

const requestError = (message: string, code: string) => new GraphQLError(message, { extensions: { code } });

/** Polls `done` every few milliseconds until it holds or `ms` pass: for shutdown, where nothing else signals. */
async function waitFor(done: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!done() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
}

export function attachGraphqlWs(options: WsTransportOptions): WsTransport {
  const { limits, logger } = options;
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxPayloadBytes, clientTracking: true });
  const contexts = new Set<Ctx>();
  let refusing = false;
  const report = () => options.onConnections?.(wss.clients.size);
  const format = (e: GraphQLError) => options.formatError(e.toJSON(), e);

  options.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== options.path) return reject(socket, 404, 'Not Found');
    if (refusing) return reject(socket, 503, 'Service Unavailable', { 'retry-after': '1' });
    if (wss.clients.size >= limits.maxConnections) {
      logger.warn({ msg: 'websocket refused: connection limit', limit: limits.maxConnections });
      return reject(socket, 503, 'Service Unavailable', { 'retry-after': '1' });
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      // The HTTP server's inactivity limit is for requests; this socket now lives by graphql-ws's pings.
      if ('setTimeout' in socket && typeof socket.setTimeout === 'function') socket.setTimeout(0);
      wss.emit('connection', ws, req);
      // What a socket emits as 'error' is the client's doing: a frame over maxPayload (ws has already closed with
      // 1009), a malformed frame (1002) or text that is not UTF-8 (1007). graphql-ws prints each with console.error,
      // outside the structured log, and asks for a close "1011 Internal server error" that ws ignores; so its
      // listener (added just above, in 'connection') is replaced by one log line with ws's error code.
      ws.removeAllListeners('error');
      ws.on('error', (e: Error & { code?: unknown }) => {
        const code = typeof e.code === 'string' ? e.code.slice(0, 64) : undefined;
        // ws names the client's protocol errors WS_ERR_*; anything else would be ours, and is logged as such.
        if (code?.startsWith('WS_ERR_')) logger.info({ msg: 'websocket closed: client protocol error', code });
        else logger.warn({ msg: 'websocket error', code, err: e.message.slice(0, 200) });
      });
      report();
      ws.once('close', report);
    });
  });

  useServer<Record<string, unknown> | undefined>(
    {
      // Close reasons of internal failures say no more than "Internal server error" in production.
      isProd: options.production,
      schema: options.schema,
      connectionInitWaitTimeout: limits.initTimeoutMs,
      onConnect: (ctx) => {
        contexts.add(ctx);
        return true;
      },
      onClose: (ctx) => {
        contexts.delete(ctx);
      },
      // Parse and validate here, with the HTTP endpoint's limits, and serve subscriptions only: queries and mutations
      // go through POST /graphql, where admission (cost, budget, 401) applies.
      onSubscribe: (ctx, _id, payload): ExecutionArgs | readonly GraphQLError[] => {
        let document: DocumentNode;
        try {
          document = parse(payload.query, { maxTokens: limits.maxTokens });
        } catch (e) {
          const message = e instanceof GraphQLError ? e.message : 'The document could not be parsed.';
          return [requestError(message, ApolloServerErrorCode.GRAPHQL_PARSE_FAILED)];
        }
        const errors = validate(options.schema, document, [...specifiedRules, ...options.validationRules]);
        if (errors.length > 0) return errors.map((e) => requestError(e.message, ApolloServerErrorCode.GRAPHQL_VALIDATION_FAILED));
        const operation = getOperationAST(document, payload.operationName);
        if (!operation) return [requestError('Unable to identify the operation.', ApolloServerErrorCode.BAD_REQUEST)];
        if (operation.operation !== 'subscription') {
          return [requestError('Only subscriptions are served over WebSocket; send queries and mutations as POST /graphql.', ApolloServerErrorCode.BAD_REQUEST)];
        }
        const headers = connectionHeaders(ctx.extra.request.headers, ctx.connectionParams);
        return {
          schema: options.schema,
          document,
          ...(payload.operationName ? { operationName: payload.operationName } : {}),
          ...(payload.variables ? { variableValues: payload.variables } : {}),
          contextValue: options.context(headers, `ws:${randomUUID()}`),
        };
      },
      onNext: (_ctx, _id, _payload, _args, result) =>
        result.errors ? { data: result.data ?? null, errors: result.errors.map(format), ...(result.extensions ? { extensions: result.extensions } : {}) } : undefined,
      onError: (_ctx, _id, _payload, errors) => errors.map(format),
    },
    wss,
    limits.keepAliveMs,
  );

  const subscriptions = () => {
    let n = 0;
    for (const ctx of contexts) n += Object.keys(ctx.subscriptions).length;
    return n;
  };

  return {
    get connections() {
      return wss.clients.size;
    },
    get subscriptions() {
      return subscriptions();
    },
    refuseNew() {
      refusing = true;
    },
    async close(graceMs) {
      refusing = true;
      // The feed has ended every subscription: their `complete` messages are on their way.
      await waitFor(() => subscriptions() === 0, graceMs);
      for (const ws of wss.clients) ws.close(1001, 'Going away');
      await waitFor(() => wss.clients.size === 0, graceMs);
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      report();
    },
  };
}
