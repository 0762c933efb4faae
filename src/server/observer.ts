import type { Logger } from 'pino';
import type { ErpObserver } from '../erp/observer';
import type { Metrics } from './metrics';

/** The ERP client's reports, as log lines and metrics. Only the endpoint, outcome and ids: never datas or tokens. */
export function erpObserver(logger: Logger, metrics: Metrics): ErpObserver {
  return {
    attempt(call, outcome, durationMs) {
      metrics.erpCalls.inc({ endpoint: call.endpoint, outcome });
      metrics.erpLatency.observe({ endpoint: call.endpoint }, durationMs / 1000);
      const line = { msg: 'erp call', requestId: call.requestId, endpoint: call.endpoint, kind: call.kind, outcome, durationMs: Math.round(durationMs) };
      if (outcome === 'ok') logger.debug(line);
      else logger.warn(line);
    },
    retry(call, attempt, delayMs, code) {
      metrics.erpRetries.inc({ endpoint: call.endpoint });
      logger.info({ msg: 'erp retry', requestId: call.requestId, endpoint: call.endpoint, attempt, delayMs, code });
    },
    login(identity, outcome) {
      // The identity is `service:<user>`; a user name is not a secret, the password never reaches here.
      metrics.erpLogins.inc({ outcome });
      logger.info({ msg: 'erp login', identity, outcome });
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
    queue(active, pending) {
      metrics.inFlight.set(active);
      metrics.queued.set(pending);
    },
  };
}
