import type { Config } from '../config';
import type { Credentials } from '../erp/client';
import type { ErpStackOptions } from '../erp/stack';

/** The ERP client's settings as configured by ZB_* variables: one mapping for the server and `npm run probe`. */
export function erpStackOptions(config: Config, erpBaseUrl: string, credentials?: Credentials): ErpStackOptions {
  return {
    transport: {
      baseUrl: erpBaseUrl,
      connections: config.ZB_MAX_CONNECTIONS,
      connectTimeoutMs: config.ZB_CONNECT_TIMEOUT_MS,
      headersTimeoutMs: config.ZB_TIMEOUT_MS,
      bodyTimeoutMs: config.ZB_TIMEOUT_MS,
      totalTimeoutMs: config.ZB_TIMEOUT_MS,
      maxResponseBytes: config.ZB_MAX_RESPONSE_BYTES,
      contentType: config.ZB_CONTENT_TYPE,
    },
    paths: { login: config.ZB_LOGIN_PATH },
    ...(credentials ? { credentials } : {}),
    session: { backoffMs: config.ZB_LOGIN_BACKOFF_MS, backoffMaxMs: config.ZB_LOGIN_BACKOFF_MAX_MS },
    retry: { retries: config.ZB_RETRIES, baseDelayMs: config.ZB_RETRY_BASE_MS, maxDelayMs: config.ZB_RETRY_MAX_MS },
    breaker: {
      errorThresholdPercentage: config.ZB_BREAKER_ERROR_PERCENT,
      volumeThreshold: config.ZB_BREAKER_VOLUME,
      resetTimeoutMs: config.ZB_BREAKER_RESET_MS,
      rollingWindowMs: config.ZB_BREAKER_WINDOW_MS,
    },
    limiter: { maxConcurrent: config.ZB_MAX_CONCURRENT_CALLS, maxWaitMs: config.ZB_QUEUE_TIMEOUT_MS },
    coalesce: config.ZB_COALESCE,
    // Built by the stack when the TTL is above 0 (ZB_CACHE_TTL_MS=0, the default, turns it off).
    cache: {
      ttlMs: config.ZB_CACHE_TTL_MS,
      staleMs: config.ZB_CACHE_STALE_MS,
      maxEntries: config.ZB_CACHE_MAX_ENTRIES,
      maxBytes: config.ZB_CACHE_MAX_BYTES,
    },
  };
}
