import type { ErpStack } from '../erp/stack';

export interface ReadinessReport {
  ready: boolean;
  body: { status: 'ready' | 'unavailable'; erp: string; retryAt?: string; redis?: string };
}

/**
 * `/health/ready`, answered at once from state: a probe never waits on the ERP and never logs in itself. Without a
 * service session it asks for one in the background (unless the login is backing off after a refusal).
 *
 * With a fleet (ZB_REDIS_URL) the body also says `redis: 'ok'` or why not. Redis down does not make a replica unready:
 * reads go on without it and keyed saves fail on their own (README "Running several replicas"); taking every replica
 * out of rotation at once would turn a degraded fleet into a dead one.
 */
export function readiness(deps: { stack: ErpStack; shuttingDown: () => boolean; redisStatus?: () => string }): () => ReadinessReport {
  const erpReport = erpReadiness(deps);
  return () => {
    const report = erpReport();
    return deps.redisStatus ? { ...report, body: { ...report.body, redis: deps.redisStatus() } } : report;
  };
}

function erpReadiness(deps: { stack: ErpStack; shuttingDown: () => boolean }): () => ReadinessReport {
  return () => {
    if (deps.shuttingDown()) return { ready: false, body: { status: 'unavailable', erp: 'shutting down' } };
    const session = deps.stack.serviceSession;
    if (!session) {
      const open = deps.stack.breaker.state === 'open';
      return { ready: !open, body: { status: open ? 'unavailable' : 'ready', erp: open ? 'circuit open' : 'ok' } };
    }
    const status = session.status();
    if (status.state === 'ready') return { ready: true, body: { status: 'ready', erp: 'ok' } };
    session.ensureLogin();
    const erp = status.state === 'backoff' ? `login refused: ${status.reason ?? 'unknown reason'}` : status.state === 'logging-in' ? 'logging in' : 'no ERP session';
    return {
      ready: false,
      body: { status: 'unavailable', erp, ...(status.retryAt !== undefined ? { retryAt: new Date(status.retryAt).toISOString() } : {}) },
    };
  };
}
