import type { Logger } from 'pino';
import type { ErpObserver } from '../erp/observer';
import type { Metrics } from './metrics';

/**
 * A metric's child per label value, made once: every ERP attempt counts and times itself, and prom-client's
 * `inc(labels)` / `observe(labels, v)` hash a fresh labels object each time. Endpoints and outcomes are a small closed
 * set (ours, not a client's), so these maps stay small.
 */
function byLabel<T>(make: (value: string) => T): (value: string) => T {
  const made = new Map<string, T>();
  return (value) => {
    let child = made.get(value);
    if (child === undefined) made.set(value, (child = make(value)));
    return child;
  };
}

/** The ERP client's reports, as log lines and metrics. Only the endpoint, outcome and ids: never datas or tokens. */
export function erpObserver(logger: Logger, metrics: Metrics): ErpObserver {
  const calls = byLabel((endpoint) => byLabel((outcome) => metrics.erpCalls.labels({ endpoint, outcome })));
  const latency = byLabel((endpoint) => metrics.erpLatency.labels({ endpoint }));
  return {
    attempt(call, outcome, durationMs) {
      calls(call.endpoint)(outcome).inc();
      latency(call.endpoint).observe(durationMs / 1000);
      const ok = outcome === 'ok';
      // The line is made only when its level is written (every successful call is a debug line).
      if (ok && !logger.isLevelEnabled('debug')) return;
      const line = { msg: 'erp call', requestId: call.requestId, endpoint: call.endpoint, kind: call.kind, outcome, durationMs: Math.round(durationMs) };
      if (ok) logger.debug(line);
      else logger.warn(line);
    },
    retry(call, attempt, delayMs, code) {
      metrics.erpRetries.inc({ endpoint: call.endpoint });
      logger.info({ msg: 'erp retry', requestId: call.requestId, endpoint: call.endpoint, attempt, delayMs, code });
    },
    login(identity, outcome, detail) {
      // The identity is `service:<user>`; a user name is not a secret, the password never reaches here. The reason is
      // the ERP's own text (why it refused), which an operator needs to fix the account.
      metrics.erpLogins.inc({ outcome });
      if (outcome === 'ok') {
        logger.info({ msg: 'erp login', identity, outcome });
        return;
      }
      const retryAt = detail?.retryAt !== undefined ? new Date(detail.retryAt).toISOString() : undefined;
      logger.warn({ msg: retryAt ? 'erp login refused; logins paused' : 'erp login failed', identity, outcome, reason: detail?.reason, retryAt });
    },
    breaker(state) {
      metrics.breakerState.set(state === 'open' ? 1 : state === 'halfOpen' ? 0.5 : 0);
      logger.warn({ msg: 'erp circuit breaker', state });
    },
    coalesced(call) {
      metrics.coalesced.inc({ endpoint: call.endpoint });
    },
    cache(call, result) {
      metrics.cache.inc({ endpoint: call.endpoint, result });
    },
    cacheDropped(call, code) {
      logger.debug({ msg: 'erp cache dropped', requestId: call.requestId, endpoint: call.endpoint, code });
    },
    queue(active, pending) {
      metrics.erpQueue.active = active;
      metrics.erpQueue.pending = pending;
    },
  };
}
