import { ConfigError, loadConfig } from './config';
import { createLogger } from './server/logger';
import { startApp } from './server/app';
import { startTracing } from './server/tracing';
import { startSimulator, type Simulator } from './simulator/server';

/**
 * `npm start`: the subgraph on PORT. With ZB_BASE_URL unset it starts the embedded ERP simulator on a loopback port
 * and uses it, so the product answers real data with no ERP at hand.
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
  // Pretty lines for a person at a terminal (or ZB_LOG_PRETTY=true); JSON lines for everything else.
  const logger = createLogger(config.ZB_LOG_LEVEL, undefined, { pretty: config.ZB_LOG_PRETTY || (process.stdout.isTTY && config.NODE_ENV !== 'production') });
  // Only the standard OTEL_* variables turn tracing on (and the SDK reads them itself); before the app, so the start-up
  // login is traced too. Off, no SDK is loaded.
  const tracing = startTracing(process.env, logger);
  if (tracing) logger.info({ msg: 'tracing on: exporting spans', exporters: tracing.exporters, protocol: tracing.protocol });
  let simulator: Simulator | undefined;
  let erpBaseUrl = config.ZB_BASE_URL;
  let credentials = config.ZB_USER && config.ZB_PASSWORD ? { user: config.ZB_USER, password: config.ZB_PASSWORD, serialnum: config.ZB_SERIALNUM } : undefined;
  if (!erpBaseUrl) {
    simulator = await startSimulator({
      user: config.SIMULATOR_USER,
      password: config.SIMULATOR_PASSWORD,
      faults: { latencyMs: config.SIMULATOR_LATENCY_MS },
    });
    erpBaseUrl = simulator.url;
    credentials = { user: config.SIMULATOR_USER, password: config.SIMULATOR_PASSWORD, serialnum: config.ZB_SERIALNUM };
    logger.info({ msg: 'ZB_BASE_URL is not set: using the embedded ERP simulator', erp: simulator.url });
  }
  const app = await startApp({ config, erpBaseUrl, ...(credentials ? { credentials } : {}), logger });
  logger.info({ msg: 'zb-aftersale-subgraph listening', url: app.url });
  // "ready" means what /health/ready says: the service account holds an ERP session (or none is needed).
  const announce = setInterval(() => {
    const session = app.stack.serviceSession;
    if (session && session.status().state !== 'ready') return;
    clearInterval(announce);
    logger.info({ msg: 'zb-aftersale-subgraph ready', url: app.url });
  }, 25);
  announce.unref();

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ msg: 'shutting down', signal, timeoutMs: config.ZB_SHUTDOWN_TIMEOUT_MS });
    // Readiness turns 503 first; requests in flight (a save and its re-read can take 2 x ZB_TIMEOUT_MS) finish within
    // ZB_SHUTDOWN_TIMEOUT_MS, and only then is the process forced out.
    // With ZB_SHUTDOWN_DRAIN_MS the listener keeps taking requests that far (a load balancer needs a probe or two to
    // see the 503 and stop sending) before it closes.
    app.beginShutdown();
    clearInterval(announce);
    const force = setTimeout(() => {
      logger.error({ msg: 'shutdown timed out: exiting with requests still in flight', timeoutMs: config.ZB_SHUTDOWN_TIMEOUT_MS });
      process.exit(1);
    }, config.ZB_SHUTDOWN_DRAIN_MS + config.ZB_SHUTDOWN_TIMEOUT_MS + 1000);
    force.unref();
    new Promise<void>((resolve) => setTimeout(resolve, config.ZB_SHUTDOWN_DRAIN_MS))
      .then(() => app.close())
      // The spans of the last requests and ERP calls are flushed once they have ended; a collector that cannot take
      // them costs those spans, not a clean exit.
      .then(() => tracing?.shutdown().catch((err: unknown) => logger.warn({ msg: 'tracing: spans not flushed at shutdown', reason: err instanceof Error ? err.message : String(err) })))
      .then(() => simulator?.close())
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error({ msg: 'shutdown failed', err });
        process.exit(1);
      });
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  // npm 11 does not forward a SIGTERM sent to `npm start` itself: npm dies and leaves node running under another
  // parent. A changed parent pid means whoever started us is gone, which is a stop request too.
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(watch);
      shutdown('parent exited');
    }
  }, 1000);
  watch.unref();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
