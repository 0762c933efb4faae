import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApolloServerPlugin } from '@apollo/server';
import { ApolloServerErrorCode } from '@apollo/server/errors';
import {
  getOperationAST,
  getVariableValues,
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import {
  createHandler,
  print,
  type ExecutionPatchResult,
  type ExecutionResult,
  type OperationArgs,
  type OperationContext,
  type Request as SseRequest,
  type RequestParams,
  type ResponseInit,
} from 'graphql-sse';
import type { Logger } from 'pino';
import { ErrorCode } from '../graphql/errors';
import { readBodyOrRefuse, requestErrorBody, sendJson } from './http';
import { codedError, publicError, type FormatError } from './subscription-errors';

/**
 * GraphQL over Server-Sent Events (the `graphql-sse` protocol, "distinct connections mode") on `GET` and `POST
 * /graphql` when the request's `Accept` lists `text/event-stream`: what Hive Gateway's default subgraph transport sends
 * for a subscription (`GET /graphql?query=...&variables=...&extensions=...`, `Accept: text/event-stream`, from
 * `@graphql-tools/executor-http`), what graphql-sse's own client sends (`POST`, JSON body) and what a browser's
 * `EventSource` sends (`GET`). Apollo Server answers such requests 406 or refuses them as CSRF, so the router hands
 * them here before Apollo.
 *
 * Only subscriptions are served here. Queries and mutations belong to Apollo's pipeline, which holds the admission
 * limits (cost, in-flight slots and bytes, 401 for operations that need an identity), the request log and
 * idempotency; executing them here would go around all of that, and no gateway needs it (Hive Gateway sends queries
 * and mutations as ordinary POSTs, Apollo Router never uses SSE towards subgraphs). A query or mutation sent here gets
 * a `BAD_REQUEST` error event.
 *
 * How errors travel, as the protocol asks: everything found before the subscription starts (syntax, validation,
 * variables, the operation type, a refused identity) is an accepted stream (200) with one `next` event carrying
 * `{ errors }` and then `complete`, because an `EventSource` cannot read the body of a 4xx. Requests that are not
 * GraphQL requests at all (no query, bad JSON, a URL or body over its limit) are ordinary 4xx JSON answers; refusals a
 * client should retry (stream limit, shutting down) are 503 `SERVER_BUSY` with `Retry-After`. Every error carries
 * `extensions.code` and goes through the app's `formatError`. An error the source stream throws mid-way ends the
 * stream the same way: a `next` with the error, then `complete`.
 *
 * Bounds: `maxStreams` streams at once (counted from the moment the request is taken, body read included); the URL of
 * a GET (`maxUrlBytes`) and the body of a POST (`bodyLimitBytes` within `bodyTimeoutMs`); tokens (`maxTokens`, as
 * Apollo's parser) and the app's validation rules (depth, aliases, cost...). A slow reader cannot make us buffer: the
 * next event is not taken from the subscription until the socket has drained (graphql-sse itself would pull the
 * source into an unbounded queue), so the source's own bounded buffer decides what happens to a consumer that
 * falls behind. A comment line every `heartbeatMs` keeps proxies and our own socket timeout from cutting an idle
 * stream: it must be shorter than both (createHttpServer's `server.timeout` is longestRequestMs + bodyTimeoutMs).
 *
 * `close()` ends every stream with a `complete` event (the subscription's source is returned) and refuses new ones, so
 * clients reconnect to another replica; streams that do not end within `closeGraceMs` are destroyed.
 *
 * Not supported: graphql-sse's "single connection mode" (PUT reservations, DELETE to stop): it keeps server-side state
 * per reservation, and no gateway uses it. Such requests are not routed here.
 */

export interface SseLimits {
  /** SSE streams open at once; the next one gets 503 SERVER_BUSY. */
  maxStreams: number;
  /** Longest request URL of a GET (its query, variables and extensions), bytes; 414 above. */
  maxUrlBytes: number;
  /** Largest POST body, bytes (413 above), read within bodyTimeoutMs (408). */
  bodyLimitBytes: number;
  bodyTimeoutMs: number;
  /** The parser's token limit, as Apollo's `parseOptions.maxTokens`. */
  maxTokens: number;
  /** A `:` comment line is written every so often; below every idle timeout on the way (proxies, server.timeout). */
  heartbeatMs: number;
  /** How long close() waits for streams to end before destroying them. */
  closeGraceMs: number;
}

export interface SseOptions<C extends object> {
  schema: GraphQLSchema;
  /**
   * The subscription's GraphQL context, from the request's headers (the identity: `x-zb-session`, same rules as HTTP).
   * Called once per stream, after the operation is validated. A GraphQLError it throws (e.g. UNAUTHENTICATED) is sent
   * to the client as an error event.
   */
  context: (req: IncomingMessage, requestId: string) => Promise<C> | C;
  limits: SseLimits;
  logger: Logger;
  /** The app's formatError (errors.ts `errorFormatter`): the same public errors as over HTTP. */
  formatError: FormatError;
  /** Validation rules beside graphql-js's own (the app's graphql-armor rules). */
  validationRules?: readonly ValidationRule[];
  /** Told the number of open streams whenever it changes (a metrics gauge). */
  onStreamsChange?: (open: number) => void;
}

export interface SseSubscriptions {
  /** Whether a `/graphql` request is an SSE one: GET or POST with `text/event-stream` in `Accept`. */
  accepts(req: IncomingMessage): boolean;
  /** Serves an SSE request until its stream ends. Errors it cannot answer itself reject (the router answers 500). */
  handle(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void>;
  /** Streams open now. */
  readonly open: number;
  /** Streams whose client is not reading fast enough: the next event waits for the socket to drain. */
  readonly waitingForDrain: number;
  /** Ends every stream with `complete` and refuses new ones; resolves once all have ended (or were destroyed). */
  close(): Promise<void>;
  /** An Apollo plugin whose drainServer is close(), so `apollo.stop()` ends the streams beside draining HTTP. */
  readonly plugin: ApolloServerPlugin;
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };
type Result = ExecutionResult | ExecutionPatchResult;

/**
 * The subscription as graphql-sse consumes it: ends at once when the stream is stopped (close(), or the client gone)
 * even while the source is waiting for its next event, and then returns the source so that it lets go of whatever it
 * holds (a poller's subscriber); an error the source throws becomes one last error result.
 */
class StoppableSource implements AsyncIterableIterator<Result, undefined, undefined> {
  private finished = false;
  private readonly stopped: Promise<IteratorReturnResult<undefined>>;
  private resolveStopped!: (done: IteratorReturnResult<undefined>) => void;

  constructor(
    private readonly inner: AsyncIterator<Result>,
    private readonly errorResult: (error: unknown) => Result,
    private readonly logger: Logger,
  ) {
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
  }

  async next(): Promise<IteratorResult<Result, undefined>> {
    if (this.finished) return DONE;
    let step: IteratorResult<Result, unknown>;
    try {
      step = await Promise.race([this.inner.next(), this.stopped]);
    } catch (error) {
      this.finished = true;
      return { done: false, value: this.errorResult(error) };
    }
    if (step.done) {
      this.finished = true;
      return DONE;
    }
    return step;
  }

  stop(): void {
    if (this.finished) return;
    this.finished = true;
    this.resolveStopped(DONE);
    // Not awaited: a source that only returns once its pending next() settles must not hold up the stream's end.
    this.inner.return?.().catch((err: unknown) => this.logger.warn({ msg: 'subscription source failed to close', err }));
  }

  async return(): Promise<IteratorReturnResult<undefined>> {
    this.stop();
    return DONE;
  }

  async throw(): Promise<IteratorReturnResult<undefined>> {
    this.stop();
    return DONE;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** One SSE request, from the moment it is taken until its response closes. */
class Stream {
  closed = false;
  stopped = false;
  draining = false;
  readonly ended: Promise<void>;
  private readonly sources = new Set<StoppableSource>();
  private wake: (() => void) | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly requestId: string,
  ) {
    this.ended = new Promise((resolve) =>
      res.once('close', () => {
        this.closed = true;
        this.wakeUp();
        resolve();
      }),
    );
    res.on('drain', () => this.wakeUp());
  }

  /** Resolves once the socket can take more (or the stream is over): the next event is taken only then. */
  async writable(): Promise<void> {
    while (!this.closed && !this.stopped && this.res.writableNeedDrain) {
      this.draining = true;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    this.draining = false;
  }

  adopt(source: StoppableSource): void {
    this.sources.add(source);
    if (this.stopped) source.stop();
  }

  stop(): void {
    this.stopped = true;
    for (const source of this.sources) source.stop();
    this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

interface RequestContext {
  stream: Stream;
}

/** `text/event-stream` among the accepted types (Hive Gateway, graphql-sse's client and EventSource send exactly that). */
function acceptsEventStream(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  return typeof accept === 'string' && accept.split(',').some((type) => type.split(';')[0]?.trim().toLowerCase() === 'text/event-stream');
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** A single `{ errors }` result as a stream: graphql-sse then writes it as a `next` event followed by `complete`. */
async function* errorsResult(errors: readonly GraphQLError[]): AsyncGenerator<ExecutionResult> {
  yield { errors };
}

export function sseSubscriptions<C extends object>(options: SseOptions<C>): SseSubscriptions {
  const { schema, limits, logger, formatError } = options;
  const rules = [...specifiedRules, ...(options.validationRules ?? [])];
  const streams = new Set<Stream>();
  let closing = false;
  const changed = () => options.onStreamsChange?.(streams.size);
  const publicErrors = (errors: readonly unknown[]) => errors.map((e) => publicError(e, formatError));

  /** Parse, validate, coerce variables and build the context; any refusal is an error result, never a throw. */
  async function prepare(req: SseRequest<IncomingMessage, RequestContext>, params: RequestParams): Promise<OperationArgs<OperationContext> | AsyncGenerator<ExecutionResult>> {
    let document: DocumentNode;
    try {
      document = parse(params.query, { maxTokens: limits.maxTokens });
    } catch (e) {
      const message = e instanceof GraphQLError ? e.message : 'The query could not be parsed.';
      return errorsResult(publicErrors([codedError(message, ApolloServerErrorCode.GRAPHQL_PARSE_FAILED)]));
    }
    const validationErrors = validate(schema, document, rules);
    if (validationErrors.length > 0) {
      return errorsResult(publicErrors(validationErrors.map((e) => new GraphQLError(e.message, { nodes: e.nodes ?? null, extensions: { code: ApolloServerErrorCode.GRAPHQL_VALIDATION_FAILED } }))));
    }
    const operation = getOperationAST(document, params.operationName);
    if (!operation) {
      const message = params.operationName ? `Unknown operation named "${params.operationName}".` : 'Must provide operation name if query contains multiple operations.';
      return errorsResult(publicErrors([codedError(message, ApolloServerErrorCode.OPERATION_RESOLUTION_FAILURE)]));
    }
    if (operation.operation !== 'subscription') {
      return errorsResult(
        publicErrors([
          codedError(
            `Only subscriptions are served over text/event-stream; send a ${operation.operation} as an ordinary POST with Content-Type: application/json.`,
            ApolloServerErrorCode.BAD_REQUEST,
          ),
        ]),
      );
    }
    const variables = getVariableValues(schema, operation.variableDefinitions ?? [], params.variables ?? {}, { maxErrors: 25 });
    if (variables.errors) {
      return errorsResult(publicErrors(variables.errors.map((e) => new GraphQLError(e.message, { nodes: e.nodes ?? null, extensions: { code: ApolloServerErrorCode.BAD_USER_INPUT } }))));
    }
    let contextValue: C;
    try {
      contextValue = await options.context(req.raw, req.context.stream.requestId);
    } catch (e) {
      return errorsResult(publicErrors([e]));
    }
    return {
      schema,
      document,
      operationName: params.operationName ?? null,
      variableValues: params.variables ?? null,
      // graphql-sse types the context as a plain record; ours is the app's context object, passed through untouched.
      contextValue: contextValue as OperationContext,
    };
  }

  const handler = createHandler<IncomingMessage, RequestContext, OperationContext>({
    // Distinct connections only: no reservation tokens, so nothing is kept per client beyond its open stream.
    authenticate: () => null,
    onSubscribe: (req, params) => prepare(req, params),
    // Validated in prepare(), with the app's rules, before the context is built.
    validate: () => [],
    onOperation: (_ctx, req, _args, result) => {
      if (!isAsyncIterable(result)) return undefined;
      const source = new StoppableSource(result[Symbol.asyncIterator](), (error) => ({ errors: publicErrors([error]) }), logger);
      req.context.stream.adopt(source);
      return source;
    },
    onNext: async (_ctx, req, result) => {
      // Backpressure: this event is written only once the socket has room, and the next is not pulled before.
      await req.context.stream.writable();
      if (!result.errors?.length) return undefined;
      return { ...result, errors: publicErrors(result.errors) };
    },
  });

  function refuseBusy(res: ServerResponse, message: string): void {
    sendJson(res, 503, requestErrorBody(message, ErrorCode.ServerBusy), { 'retry-after': '1' });
  }

  /** graphql-sse's own 4xx answers (no query, bad variables, wrong content type) with `extensions.code` added. */
  function sendPlain(res: ServerResponse, body: string | null, init: ResponseInit): void {
    let errors: Array<{ message: string; extensions: Record<string, unknown> }> = [];
    if (body) {
      try {
        const parsed = JSON.parse(body) as { errors?: Array<{ message?: unknown }> };
        errors = (parsed.errors ?? []).map((e) => ({ message: String(e.message ?? init.statusText), extensions: { code: ApolloServerErrorCode.BAD_REQUEST } }));
      } catch {
        errors = [];
      }
    }
    if (errors.length === 0) errors = [{ message: init.statusText || 'Bad request', extensions: { code: ApolloServerErrorCode.BAD_REQUEST } }];
    const headers: Record<string, string> = {};
    if (init.headers?.allow) headers.allow = init.headers.allow;
    sendJson(res, init.status, { errors }, headers);
  }

  async function pipe(stream: Stream, body: AsyncGenerator<string, void, undefined>, init: ResponseInit): Promise<void> {
    const { res } = stream;
    if (stream.closed) {
      await body.return(undefined);
      return;
    }
    // x-accel-buffering: nginx would otherwise hold events back in its buffer.
    res.writeHead(init.status, { ...init.headers, 'x-accel-buffering': 'no', 'x-request-id': stream.requestId });
    const onClose = () => void body.return(undefined);
    res.once('close', onClose);
    const heartbeat = setInterval(() => {
      // A stream that has data queued needs no heartbeat, and must not grow its buffer with them.
      if (res.writable && !res.writableNeedDrain) res.write(':\n\n');
    }, limits.heartbeatMs);
    heartbeat.unref();
    try {
      for await (const message of body) {
        if (!res.writable) break;
        res.write(message);
      }
    } catch (err) {
      // onNext or graphql-sse failed (a bug): end with an error event the client can read, not a cut connection.
      logger.error({ msg: 'SSE stream failed', requestId: stream.requestId, err });
      if (res.writable) {
        res.write(print({ event: 'next', data: { errors: publicErrors([err]) } }));
        res.write(print({ event: 'complete', data: null }));
      }
    } finally {
      clearInterval(heartbeat);
      res.off('close', onClose);
      if (res.writable) res.end();
    }
  }

  async function serve(stream: Stream): Promise<void> {
    const { req, res } = stream;
    let body: Record<string, unknown> | string | null = null;
    if (req.method === 'POST') {
      const text = await readBodyOrRefuse(req, res, limits);
      if (text === undefined) return;
      if (String(req.headers['content-type'] ?? '').includes('application/json')) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          // Not graphql-sse's JSON.parse: its message quotes the body back.
          sendJson(res, 400, requestErrorBody('Request body is not valid JSON', ApolloServerErrorCode.BAD_REQUEST));
          return;
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
          sendJson(res, 400, requestErrorBody('Request body must be a JSON object', ApolloServerErrorCode.BAD_REQUEST));
          return;
        }
        body = parsed as Record<string, unknown>;
      } else body = text;
    }
    if (stream.closed) return;
    if (closing) return refuseBusy(res, 'The service is shutting down; subscribe again.');
    const [payload, init] = await handler({
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: {
        // accepts() already decided; graphql-sse compares the header with exactly this.
        get: (key) => (key.toLowerCase() === 'accept' ? 'text/event-stream' : headerValue(req.headers[key.toLowerCase()])),
      },
      body,
      raw: req,
      context: { stream },
    });
    if (payload === null || typeof payload === 'string') return sendPlain(res, payload, init);
    await pipe(stream, payload, init);
  }

  async function close(): Promise<void> {
    closing = true;
    for (const stream of streams) stream.stop();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, limits.closeGraceMs);
      timer.unref();
    });
    await Promise.race([Promise.all([...streams].map((s) => s.ended)), grace]);
    clearTimeout(timer);
    for (const stream of streams) stream.res.destroy();
  }

  return {
    accepts: (req) => (req.method === 'GET' || req.method === 'POST') && acceptsEventStream(req),
    async handle(req, res, requestId) {
      if (closing) return refuseBusy(res, 'The service is shutting down; subscribe again.');
      if (streams.size >= limits.maxStreams) {
        logger.warn({ msg: 'SSE stream refused: limit reached', requestId, maxStreams: limits.maxStreams });
        return refuseBusy(res, `The service is at its limit of ${limits.maxStreams} event streams; try again shortly.`);
      }
      if ((req.url ?? '').length > limits.maxUrlBytes) {
        sendJson(res, 414, requestErrorBody(`The request URL exceeds ${limits.maxUrlBytes} bytes; send the subscription as a POST.`, ApolloServerErrorCode.BAD_REQUEST));
        return;
      }
      const stream = new Stream(req, res, requestId);
      streams.add(stream);
      changed();
      try {
        await serve(stream);
      } finally {
        streams.delete(stream);
        changed();
      }
    },
    get open() {
      return streams.size;
    },
    get waitingForDrain() {
      let n = 0;
      for (const stream of streams) if (stream.draining) n++;
      return n;
    },
    close,
    plugin: {
      async serverWillStart() {
        return { drainServer: close };
      },
    },
  };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Result> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}
