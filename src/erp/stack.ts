import { compose, type Layer, type Send } from './call';
import { DEFAULT_PATHS, ErpClient, type ErpPaths } from './client';
import { circuitBreaker, type Breaker, type BreakerOptions } from './layers/breaker';
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
  /** Extra layers above the session layer (e.g. a read cache), outermost first. */
  outerLayers?: Layer[];
}

export interface ErpStack {
  client: ErpClient;
  /** The service account's shared session, when credentials are configured. */
  serviceSession: ServiceAccountSession | undefined;
  breaker: Breaker;
  close(): Promise<void>;
}

/**
 * The client's layers, outermost first:
 *   [outer layers, e.g. cache] -> coalesce -> session (relogin once) -> gate -> retry -> breaker -> limiter -> observe
 *   -> transport
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
  const top: Send = compose(...(options.outerLayers ?? []), ...(options.coalesce ? [coalesce(observer)] : []), withSession())(wire);
  return {
    client: new ErpClient(top, paths),
    serviceSession,
    breaker,
    close: () =>
      (closing ??= (async () => {
        // New calls are refused first; calls already on the wire finish (the pool closes gracefully).
        front.close();
        breaker.shutdown();
        await transport.close();
      })()),
  };
}
