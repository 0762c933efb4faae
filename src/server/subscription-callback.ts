import type { ApolloServerPlugin, BaseContext, GraphQLRequestListener } from '@apollo/server';
import { ApolloServerErrorCode } from '@apollo/server/errors';
import { ApolloServerPluginSubscriptionCallback } from '@apollo/server/plugin/subscriptionCallback';
import { MapperKind, mapSchema } from '@graphql-tools/utils';
import { defaultFieldResolver, GraphQLError, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import type { Logger } from 'pino';
import { serverBusy } from './admission';
import { publicError, type FormatError } from './subscription-errors';

/**
 * Apollo's HTTP callback protocol (Apollo Router's callback mode) on `POST /graphql`: Apollo Server's own
 * `ApolloServerPluginSubscriptionCallback` (@apollo/server 5.5), configured and wrapped where it falls short.
 *
 * The protocol, as the plugin speaks it. The router POSTs the subscription to /graphql with `Accept:
 * application/json;callbackSpec=1.0` and `extensions.subscription = { callbackUrl, subscriptionId, verifier,
 * heartbeatIntervalMs }` (snake_case aliases accepted); the subgraph answers 200 `{"data":null}` and then POSTs JSON to
 * callbackUrl, each with `content-type: application/json`:
 *  - `{ kind: 'subscription', action: 'check', id, verifier }` with header `subscription-protocol: callback/1.0`, once
 *    before the subscription starts (the router answers 204; if it fails after the retries the subscription request
 *    itself gets a 500), then every heartbeatIntervalMs as the heartbeat (same message, same header);
 *  - `{ kind: 'subscription', action: 'next', id, verifier, payload: <ExecutionResult> }` per event (router: 200);
 *  - `{ kind: 'subscription', action: 'complete', id, verifier, errors? }` when the source ends or throws, and on
 *    shutdown (router: 202).
 * A 404 from the router (to a next or a heartbeat; to a heartbeat also 400) ends the subscription: the plugin calls the
 * subscription iterator's return(), which returns the source. Other 4xx to a next end it too; 5xx and network errors
 * are retried (`retry`); `maxConsecutiveHeartbeatFailures` failed heartbeats in a row end it.
 *
 * It needs `fetch`: the plugin POSTs with `options.fetcher`, the global fetch by default. We give it one that is
 * bounded: a timeout per request (`fetchTimeoutMs`, the body included, so a router that hangs cannot hold a
 * subscription's send loop or the shutdown), no redirects followed (a 3xx is a failure, not a new destination), the
 * router's answer read and dropped (at most 64 KiB; unread bodies would pin sockets), and only to allowed URLs. Sends
 * per subscription are sequential (one next or complete at a time, plus one heartbeat), so at most
 * 2 x maxSubscriptions requests are in flight; each message takes at most (retries + 1) x fetchTimeoutMs plus the
 * backoff.
 *
 * Where the plugin falls short, and what the wrapper does:
 *  - It POSTs to whatever `callbackUrl` a request names: anyone who can reach /graphql could make the subgraph send
 *    requests anywhere, for as long as it likes. Callback URLs must start with one of `callbackUrls` (the router's
 *    `public_url` + path), else 400 BAD_REQUEST before anything is sent.
 *  - Its willSendResponse also runs for requests that failed (a validation error, an admission refusal such as 401
 *    or COST_ESTIMATED_TOO_EXPENSIVE): it would check and start the subscription anyway. The wrapper forwards only when
 *    the operation was admitted and reached `responseForOperation`.
 *  - It keys subscriptions by callbackUrl: a second request with the same URL overwrites the first's entry and leaks
 *    its heartbeat timer. A URL already active is refused (400).
 *  - A 404 to the first `check` does not stop it (it starts the subscription and waits for a heartbeat to fail): here
 *    the subscription then ends at once, before its source is even created.
 *  - The router may ask for no heartbeats (0) or any interval: without heartbeats a subscription whose router has
 *    forgotten it (restart) would live until its next event. The interval is clamped to [heartbeatMinMs,
 *    heartbeatMaxMs] and 0 becomes heartbeatMaxMs.
 *  - It sends `next` payloads and `complete` errors as graphql-js made them, never through formatError: the ERP's own
 *    texts and internal messages would reach the router. The subscription runs on a copy of the schema whose resolvers
 *    and subscription sources throw errors already formatted (publicError), so what is sent is what HTTP would show.
 *  - No limit on subscriptions: at most `maxSubscriptions` at once (503 SERVER_BUSY above).
 * A subscription is counted from its admission until its source ends (iterator done, thrown, or returned by the
 * plugin after a 404, failed heartbeats or the shutdown), which is what the schema copy observes.
 *
 * Shutdown: the plugin's drainServer (run by `apollo.stop()`) stops the heartbeats, sends `complete` for every open
 * subscription (the router then ends it for its client, who resubscribes) and waits for requests in flight, each
 * bounded by fetchTimeoutMs and the retries. New callback subscriptions are refused (503) from then on.
 *
 * The subscription's GraphQL context is the one Apollo built for the POST (the router forwards the client's headers,
 * so the identity comes from `x-zb-session` as for any request); it outlives that request, so anything in it bound
 * to the request (its deadline, its abort signal, its admission ticket) must not be used by the subscription.
 */

export interface CallbackLimits {
  /**
   * Allowed callback URL prefixes, each the router's `public_url` + callback `path` (the router appends `/<id>`); empty
   * refuses every callback subscription. Matched at a path-segment boundary.
   */
  callbackUrls: readonly string[];
  /** Callback subscriptions open at once. */
  maxSubscriptions: number;
  /** Each POST to the router, response included. */
  fetchTimeoutMs: number;
  /** Heartbeats (check messages) no more often than this, whatever the router asks. */
  heartbeatMinMs: number;
  /** ...and at least this often, also when the router asks for none. */
  heartbeatMaxMs: number;
  /** Retries of a failed check/next/complete (5xx, network error, timeout), with backoff between min and max. */
  retries: number;
  retryMinMs: number;
  retryMaxMs: number;
  /** Failed heartbeats in a row that end a subscription. */
  maxConsecutiveHeartbeatFailures: number;
}

export interface CallbackOptions {
  limits: CallbackLimits;
  logger: Logger;
  /** The app's formatError (errors.ts `errorFormatter`). */
  formatError: FormatError;
  /** Told the number of open callback subscriptions whenever it changes (a metrics gauge). */
  onSubscriptionsChange?: (open: number) => void;
}

export interface SubscriptionCallback<C extends BaseContext> {
  /** Add to Apollo Server's plugins. */
  readonly plugin: ApolloServerPlugin<C>;
  /** Callback subscriptions open now. */
  readonly open: number;
}

type Fetcher = NonNullable<NonNullable<Parameters<typeof ApolloServerPluginSubscriptionCallback>[0]>['fetcher']>;

/** The router's answers are small (204, 202, a short JSON error); anything longer is dropped unread. */
const MAX_ANSWER_BYTES = 64 * 1024;
const MAX_URL_LENGTH = 2048;
/** Router ids are UUIDs and verifiers hex HMACs: printable ASCII, bounded. */
const ID = /^[\x21-\x7e]{1,128}$/;
const VERIFIER = /^[\x21-\x7e]{1,512}$/;

interface Entry {
  url: string;
  /** The subscription's source was asked for (the first check is behind it). */
  started: boolean;
  /** The router answered 404 to the first check: the subscription ends before its source is made. */
  refused: boolean;
  end(): void;
}

interface SubscriptionExtension {
  callbackUrl: string;
  subscriptionId: string;
  verifier: string;
  heartbeatIntervalMs: number;
}

function badRequest(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: ApolloServerErrorCode.BAD_REQUEST, http: { status: 400 } } });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

async function dropBody(res: Response): Promise<void> {
  const reader = res.body?.getReader();
  if (!reader) return;
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    size += value.byteLength;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel();
      return;
    }
  }
}

export function subscriptionCallback<C extends BaseContext>(options: CallbackOptions): SubscriptionCallback<C> {
  const { limits, logger, formatError } = options;
  // A prefix ends at a path segment: `.../callback` allows `.../callback/<id>`, not `.../callbackother/...`.
  const prefixes = limits.callbackUrls.map((u) => {
    const href = new URL(u).href;
    return href.endsWith('/') ? href : `${href}/`;
  });
  const byUrl = new Map<string, Entry>();
  const byContext = new WeakMap<object, Entry>();
  const tracked = new WeakMap<GraphQLSchema, GraphQLSchema>();
  let draining = false;
  const changed = () => options.onSubscriptionsChange?.(byUrl.size);

  const allowed = (url: string) => prefixes.some((prefix) => url.startsWith(prefix));

  function parseExtension(raw: unknown): SubscriptionExtension | GraphQLError {
    // Callback mode off (no router configured): said as such, rather than as a URL that is not allowed.
    if (prefixes.length === 0) return badRequest('Subscriptions over the HTTP callback protocol are not enabled on this subgraph; subscribe over WebSocket (graphql-transport-ws) or SSE at /graphql.');
    if (!isRecord(raw)) return badRequest('extensions.subscription must be an object.');
    const callbackUrl = raw.callbackUrl ?? raw.callback_url;
    const subscriptionId = raw.subscriptionId ?? raw.subscription_id;
    const verifier = raw.verifier;
    const interval = raw.heartbeatIntervalMs ?? raw.heartbeat_interval_ms ?? limits.heartbeatMaxMs;
    if (typeof callbackUrl !== 'string' || callbackUrl.length > MAX_URL_LENGTH) return badRequest('extensions.subscription.callbackUrl must be a URL.');
    let url: URL;
    try {
      url = new URL(callbackUrl);
    } catch {
      return badRequest('extensions.subscription.callbackUrl must be a URL.');
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || !allowed(url.href)) {
      // The URL is not echoed: it is client input.
      return badRequest('extensions.subscription.callbackUrl is not an allowed callback URL for this subgraph.');
    }
    if (typeof subscriptionId !== 'string' || !ID.test(subscriptionId)) return badRequest('extensions.subscription.subscriptionId is missing or malformed.');
    if (typeof verifier !== 'string' || !VERIFIER.test(verifier)) return badRequest('extensions.subscription.verifier is missing or malformed.');
    if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 0) return badRequest('extensions.subscription.heartbeatIntervalMs must be a number of milliseconds.');
    const heartbeatIntervalMs = interval === 0 ? limits.heartbeatMaxMs : Math.min(limits.heartbeatMaxMs, Math.max(limits.heartbeatMinMs, Math.round(interval)));
    return { callbackUrl: url.href, subscriptionId, verifier, heartbeatIntervalMs };
  }

  function register(url: string, context: object): Entry {
    let ended = false;
    const entry: Entry = {
      url,
      started: false,
      refused: false,
      end: () => {
        if (ended) return;
        ended = true;
        byUrl.delete(url);
        changed();
      },
    };
    byUrl.set(url, entry);
    byContext.set(context, entry);
    changed();
    return entry;
  }

  /** The source as the plugin consumes it: its end is the subscription's end; what it throws is already public. */
  function trackedSource(source: AsyncIterable<unknown>, entry: Entry): AsyncIterableIterator<unknown> {
    const inner = source[Symbol.asyncIterator]();
    const iterator: AsyncIterableIterator<unknown> = {
      next: async () => {
        try {
          const step = await inner.next();
          if (step.done) entry.end();
          return step;
        } catch (e) {
          entry.end();
          throw publicError(e, formatError);
        }
      },
      return: async (value?: unknown) => {
        entry.end();
        return inner.return ? inner.return(value) : { done: true, value };
      },
      throw: async (error?: unknown) => {
        entry.end();
        if (inner.throw) return inner.throw(error);
        throw error;
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** Something that ends at once: what a subscription the router refused at the first check consumes. */
  function ended(entry: Entry): AsyncIterableIterator<unknown> {
    entry.end();
    const iterator: AsyncIterableIterator<unknown> = {
      next: async () => ({ done: true, value: undefined }),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /**
   * The schema the callback subscriptions run on: a copy in which every resolver's error is formatted and the
   * subscription fields' sources are tracked. Only the plugin executes on it; Apollo's own schema is untouched.
   */
  function trackedSchema(schema: GraphQLSchema): GraphQLSchema {
    const known = tracked.get(schema);
    if (known) return known;
    const subscriptionType = schema.getSubscriptionType()?.name;
    const copy = mapSchema(schema, {
      [MapperKind.OBJECT_FIELD]: (field, _name, typeName) => {
        const resolve = field.resolve;
        const wrapped = { ...field };
        if (resolve) {
          wrapped.resolve = (source, args, context, info) => {
            try {
              const value: unknown = resolve(source, args, context, info);
              return value instanceof Promise ? value.catch((e: unknown) => Promise.reject(publicError(e, formatError))) : value;
            } catch (e) {
              throw publicError(e, formatError);
            }
          };
        }
        if (typeName === subscriptionType) {
          const subscribe: GraphQLFieldResolver<unknown, unknown> = field.subscribe ?? defaultFieldResolver;
          wrapped.subscribe = async (source, args, context, info) => {
            const entry = typeof context === 'object' && context !== null ? byContext.get(context) : undefined;
            if (!entry) return subscribe(source, args, context, info);
            entry.started = true;
            if (entry.refused) return ended(entry);
            let stream: unknown;
            try {
              stream = await subscribe(source, args, context, info);
            } catch (e) {
              entry.end();
              throw publicError(e, formatError);
            }
            if (!isAsyncIterable(stream)) {
              entry.end();
              return stream;
            }
            return trackedSource(stream, entry);
          };
        }
        return wrapped;
      },
    });
    tracked.set(schema, copy);
    return copy;
  }

  const fetcher: Fetcher = async (url, init) => {
    // Defence in depth: parseExtension already refused other URLs.
    if (!allowed(url)) throw new Error('callback URL not allowed');
    const res = await fetch(url, {
      method: init?.method ?? 'POST',
      ...(init?.headers ? { headers: init.headers } : {}),
      ...(init?.body !== undefined ? { body: init.body } : {}),
      redirect: 'manual',
      signal: AbortSignal.timeout(limits.fetchTimeoutMs),
    });
    await dropBody(res);
    const entry = byUrl.get(url);
    if (res.status === 404 && entry && !entry.started) entry.refused = true;
    return res;
  };

  const inner = ApolloServerPluginSubscriptionCallback({
    logger: logger.child({ component: 'subscription-callback' }),
    fetcher,
    maxConsecutiveHeartbeatFailures: limits.maxConsecutiveHeartbeatFailures,
    retry: { retries: limits.retries, minTimeout: limits.retryMinMs, maxTimeout: limits.retryMaxMs },
  });

  const plugin: ApolloServerPlugin<C> = {
    async serverWillStart(service) {
      const listener = await inner.serverWillStart?.(service);
      return {
        async drainServer() {
          draining = true;
          await listener?.drainServer?.();
        },
      };
    },

    async requestDidStart(requestContext) {
      const extensions = requestContext.request.extensions;
      if (extensions?.subscription === undefined) return;
      const parsed = parseExtension(extensions.subscription);
      if (parsed instanceof GraphQLError) {
        // Refused once the operation is resolved (a syntax error still answers as such); the plugin never sees it.
        return { didResolveOperation: async () => Promise.reject(parsed) };
      }
      // The plugin reads the extension when its requestDidStart runs: it sees the checked, normalised one.
      extensions.subscription = parsed;
      const listener: GraphQLRequestListener<BaseContext> | void = await inner.requestDidStart?.(requestContext);
      let entry: Entry | undefined;
      let admitted = false;
      return {
        async didResolveOperation({ operation, contextValue }) {
          if (operation?.operation !== 'subscription') throw badRequest('extensions.subscription (the callback protocol) is for subscription operations only.');
          if (draining) throw serverBusy('The service is shutting down; subscribe again.');
          if (byUrl.has(parsed.callbackUrl)) throw badRequest('A subscription with this callbackUrl is already active.');
          if (byUrl.size >= limits.maxSubscriptions) {
            logger.warn({ msg: 'callback subscription refused: limit reached', maxSubscriptions: limits.maxSubscriptions });
            throw serverBusy(`The service is at its limit of ${limits.maxSubscriptions} callback subscriptions; try again shortly.`);
          }
          entry = register(parsed.callbackUrl, contextValue);
        },
        // Reached only when every plugin's didResolveOperation passed and no plugin answered before this one.
        async responseForOperation(ctx) {
          admitted = true;
          return (await listener?.responseForOperation?.(ctx)) ?? null;
        },
        async willSendResponse(ctx) {
          if (!entry) return;
          if (!admitted) {
            entry.end();
            return;
          }
          try {
            await listener?.willSendResponse?.({ ...ctx, schema: trackedSchema(ctx.schema) });
          } finally {
            // The first check failed, or the subscription never got a source: nothing will end it later.
            if (!entry.started) entry.end();
          }
        },
      };
    },
  };

  return {
    plugin,
    get open() {
      return byUrl.size;
    },
  };
}
