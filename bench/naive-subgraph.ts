import { loadConfig } from '../src/config';
import { requestScope, type DetailLoaderFactory } from '../src/domain/request-scope';
import { createLogger } from '../src/server/logger';
import { startApp } from '../src/server/app';

/**
 * The naive resolver set as its own process, for the benchmark's comparison only: the same app as `npm start`, with a
 * detail loader that neither batches nor remembers, so every field access that needs a detail is one ERP call (still
 * within the request's ERP slots). It is handed in through the app's `requestServices` extension point; nothing in
 * the product's configuration can reach it. Reads the same ZB_* environment as the product; ZB_BASE_URL, ZB_USER and
 * ZB_PASSWORD are required.
 */
const oneCallPerAccess: DetailLoaderFactory = (read) => ({ load: read });

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.ZB_BASE_URL) throw new Error('ZB_BASE_URL is required');
  const app = await startApp({
    config,
    erpBaseUrl: config.ZB_BASE_URL,
    credentials: { user: config.ZB_USER ?? '', password: config.ZB_PASSWORD ?? '', serialnum: config.ZB_SERIALNUM },
    logger: createLogger(config.ZB_LOG_LEVEL),
    requestServices: (shared) => requestScope(shared, { detailLoader: oneCallPerAccess }),
  });
  const stop = () => void app.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  // Started by the bench over an IPC channel: when the bench is gone (killed, timed out), so is this process.
  process.once('disconnect', stop);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
