import { compose, type ErpLayer, type Send } from './call';
import { MemoryReadCacheStore, type ReadCacheStore } from './cache-store';
import { DEFAULT_PATHS, ErpClient, type Credentials, type ErpPaths } from './client';
import { serviceTags, WriteFence } from './fence';
import { circuitBreaker, type Breaker, type BreakerOptions } from './layers/breaker';
import { readCache, type CacheOptions, type ReadCache } from './layers/cache';
import { coalesce } from './layers/coalesce';
import { gate } from './layers/gate';
import { concurrencyLimit, type LimiterOptions } from './layers/limiter';
import { retry, type RetryOptions } from './layers/retry';
import { withSession } from './layers/session';
import { traceAttempts, traceCalls, traceEvents } from './layers/trace';
import type { ErpObserver } from './observer';
import { ServiceAccountSession, type ServiceSessionOptions } from './service-account';
import { ErpTransport, type TransportOptions, type WireObserver } from './transport';

export interface ReadCacheSettings extends CacheOptions {
  /** The in-process store's bounds: entries, and estimated heap bytes (cache-store.ts). */
  maxEntries: number;
  maxBytes: number;
}

export interface ErpStackOptions {
  transport: TransportOptions;
  paths?: Partial<ErpPaths>;
  credentials?: Credentials;
  /** The service account's login backoff (and, in tests, its clock). */
  session?: ServiceSessionOptions;
  retry: RetryOptions;
  breaker: BreakerOptions;
  limiter: LimiterOptions;
  coalesce: boolean;
  /** The read cache: off when absent or when `ttlMs` is 0. */
  cache?: ReadCacheSettings;
  /** Where the read cache keeps its answers instead of this process's memory (a store shared by replicas). */
  cacheStore?: ReadCacheStore;
  /** Layers every attempt passes after the process limiter (a fleet-wide call budget). */
  wireLayers?: ErpLayer[];
}

/** What the domain calls after a save (its `ServiceCache` port, domain/ports.ts; erp/ does not import the domain). */
export interface ServiceCacheAdapter {
  afterSave(id: string): Promise<void>;
}

export interface ErpStack {
  client: ErpClient;
  /** The service account's shared session, when credentials are configured. */
  serviceSession: ServiceAccountSession | undefined;
  breaker: Breaker;
  /** Shared by coalescing and the read cache: no answer read before a write of a service is handed out after it. */
  fence: WriteFence;
  cache: ReadCache | undefined;
  /** After a save of service `id`: its cached detail and the list pages are dropped, reads of them in flight fenced. */
  serviceCache: ServiceCacheAdapter;
  close(): Promise<void>;
}

export function createErpStack(options: ErpStackOptions, reports: ErpObserver = {}): ErpStack {
  // What the layers report also becomes trace events on the call's span (a no-op while no tracing SDK is registered).
  const observer = traceEvents(reports);
  const attempts = traceAttempts(options.transport.baseUrl);
  // The transport reports to the attempt spans (status and size) and to the logs and metrics (outcome and duration).
  const wire: WireObserver = {};
  if (attempts.reply) wire.reply = attempts.reply;
  if (observer.attempt) wire.attempt = (call, outcome, durationMs) => observer.attempt?.(call, outcome, durationMs);
  const transport = new ErpTransport(options.transport, wire);
  const paths = { ...DEFAULT_PATHS, ...options.paths };
  const fence = new WriteFence();
  const breaker = circuitBreaker(options.breaker, observer);
  const cacheSettings = options.cache;
  const cache = cacheSettings && cacheSettings.ttlMs > 0 ? readCache(cacheSettings, observer, options.cacheStore ?? memoryStore(cacheSettings), fence) : undefined;
  // A shared store moves this fence on other replicas' saves (cache-store.ts).
  if (cache) options.cacheStore?.bindFence?.(fence);

  /**
   * The whole client, outermost first, as a call travels:
   * - the call's trace span (nothing at all while no tracing SDK is registered);
   * - the write fence comes first of what acts on calls, so a write's settling bump happens before its caller sees the
   *   reply (and re-reads);
   * - the read cache and coalescing see each caller's read once, and honour that same fence;
   * - the session layer puts the token in, and repeats a call once after a relogin;
   * - from the gate down every attempt is its own: retry sits above the breaker and the limiter so that each attempt
   *   is counted and queued on its own, and gets its own span right above the transport.
   * Logins enter at the top too and pass straight down to the gate: they are neither reads nor writes, and the
   * session layer lets calls of kind 'login' through, so they share the reads' resilience and nothing else.
   */
  const layers: ErpLayer[] = [
    traceCalls(),
    fence,
    ...(cache ? [cache] : []),
    ...(options.coalesce ? [coalesce(observer, fence)] : []),
    withSession(),
    gate(),
    retry(options.retry, observer),
    breaker,
    concurrencyLimit(options.limiter, observer),
    ...(options.wireLayers ?? []),
    attempts,
  ];
  const send: Send = compose(...layers)(transport.send);

  let closing: Promise<void> | undefined;
  return {
    client: new ErpClient(send, paths),
    serviceSession: options.credentials ? new ServiceAccountSession(send, options.credentials, paths.login, observer, options.session) : undefined,
    breaker,
    fence,
    cache,
    serviceCache: {
      async afterSave(id) {
        // The fence layer already moved on the write itself; bumping again is harmless and covers any other path.
        if (cache) await cache.invalidateService(id);
        else fence.bump(serviceTags(id));
      },
    },
    close: () =>
      (closing ??= (async () => {
        // Every layer closes at once, outermost first: the gate refuses new calls before the breaker shuts down (a
        // retry under way then ends as ERP_CLIENT_CLOSED). Calls on the wire finish: the pool closes gracefully.
        const closed = layers.map((layer) => layer.close?.());
        await Promise.all(closed);
        await transport.close();
      })()),
  };
}

function memoryStore(settings: ReadCacheSettings): MemoryReadCacheStore {
  return new MemoryReadCacheStore(settings.maxEntries, { maxBytes: settings.maxBytes, ...(settings.now ? { now: settings.now } : {}) });
}
