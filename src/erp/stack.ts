import { compose, type Layer, type Send } from './call';
import { DEFAULT_PATHS, ErpClient, type ErpPaths } from './client';
import { serviceTags, WriteFence } from './fence';
import { circuitBreaker, type Breaker, type BreakerOptions } from './layers/breaker';
import { readCache, type CacheOptions, type ReadCache, type ReadCacheStore } from './layers/cache';
import { coalesce } from './layers/coalesce';
import { gate } from './layers/gate';
import { concurrencyLimit, type LimiterOptions } from './layers/limiter';
import { observeAttempts } from './layers/observe';
import { retry, type RetryOptions } from './layers/retry';
import { ServiceAccountSession, withSession, type Credentials, type ServiceSessionOptions } from './layers/session';
import type { ErpObserver } from './observer';
import { ErpTransport, type TransportOptions } from './transport';

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
  /** The read cache (ZB_CACHE_TTL_MS > 0), built here so it honours the same write fence as coalescing. */
  cache?: { options: CacheOptions; store: ReadCacheStore };
  /** Extra layers above the cache and coalescing, outermost first. */
  outerLayers?: Layer[];
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

/**
 * The client's layers, outermost first:
 *   write fence -> [outer layers] -> [read cache] -> coalesce -> session (relogin once) -> gate -> retry -> breaker
 *   -> limiter -> observe -> transport
 * The fence is outermost so that a write's settling bump happens before its caller sees the reply (and re-reads).
 * Retry sits above the breaker and the limiter so that every attempt is counted and queued on its own; logins enter
 * below the session layer and share the same resilience.
 */
export function createErpStack(options: ErpStackOptions, observer: ErpObserver = {}): ErpStack {
  const transport = new ErpTransport(options.transport);
  const breaker = circuitBreaker(options.breaker, observer);
  const limiter = concurrencyLimit(options.limiter, observer);
  const front = gate();
  let closing: Promise<void> | undefined;
  const wire: Send = compose(front.layer, retry(options.retry, observer), breaker.layer, limiter, observeAttempts(observer))(transport.send);
  const paths = { ...DEFAULT_PATHS, ...options.paths };
  const serviceSession = options.credentials ? new ServiceAccountSession(wire, options.credentials, paths.login, observer, options.session) : undefined;
  const fence = new WriteFence();
  const cache = options.cache ? readCache(options.cache.options, observer, options.cache.store, fence) : undefined;
  const top: Send = compose(
    fence.layer,
    ...(options.outerLayers ?? []),
    ...(cache ? [cache.layer] : []),
    ...(options.coalesce ? [coalesce(observer, fence)] : []),
    withSession(),
  )(wire);
  return {
    client: new ErpClient(top, paths),
    serviceSession,
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
        // New calls are refused first; calls already on the wire finish (the pool closes gracefully).
        front.close();
        breaker.shutdown();
        await transport.close();
      })()),
  };
}
