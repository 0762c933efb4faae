import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApolloServerErrorCode } from '@apollo/server/errors';
import type { Logger } from 'pino';
import { requestErrorBody, sendJson } from './http';
import type { Metrics } from './metrics';
import type { ReadinessReport } from './readiness';

/** A client-sent request id is echoed only when it is short and plain; otherwise we make one. */
function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
}

/** The routes on PORT: `/graphql`, the health probes and `/metrics`; anything else is 404. */
export function router(deps: {
  graphql: (req: IncomingMessage, res: ServerResponse, requestId: string) => Promise<void>;
  /** Subscriptions over SSE (subscriptions-sse.ts): taken before Apollo, which refuses `text/event-stream` requests. */
  sse?: { accepts(req: IncomingMessage): boolean; handle(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> };
  ready: () => ReadinessReport;
  metrics: Metrics;
  logger: Logger;
}): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const requestId = requestIdOf(req);
    const path = (req.url ?? '/').split('?')[0];
    const route = async () => {
      if (path === '/graphql') return deps.sse?.accepts(req) ? deps.sse.handle(req, res, requestId) : deps.graphql(req, res, requestId);
      if (req.method === 'GET' && path === '/health/live') return sendJson(res, 200, { status: 'ok' });
      if (req.method === 'GET' && path === '/health/ready') {
        const report = deps.ready();
        return sendJson(res, report.ready ? 200 : 503, report.body);
      }
      if (req.method === 'GET' && path === '/metrics') {
        const text = await deps.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
        res.end(text);
        return;
      }
      sendJson(res, 404, { error: 'not found', routes: ['/graphql', '/health/live', '/health/ready', '/metrics'] });
    };
    route().catch((err: unknown) => {
      deps.logger.error({ msg: 'request failed', requestId, err });
      if (!res.headersSent) sendJson(res, 500, requestErrorBody('Internal server error', ApolloServerErrorCode.INTERNAL_SERVER_ERROR));
      else res.destroy();
    });
  };
}
