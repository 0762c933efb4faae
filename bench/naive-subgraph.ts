import { loadConfig } from '../src/config';
import { createLogger } from '../src/server/logger';
import { startApp } from '../src/server/app';

/**
 * The naive resolver set as its own process, for the benchmark's comparison only: the same app as `npm start` with
 * `naiveDetailLoads` (one ERP detail call per field access), an option no configuration of the product can reach.
 * Reads the same ZB_* environment as the product; ZB_BASE_URL, ZB_USER and ZB_PASSWORD are required.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.ZB_BASE_URL) throw new Error('ZB_BASE_URL is required');
  const app = await startApp({
    config,
    erpBaseUrl: config.ZB_BASE_URL,
    credentials: { user: config.ZB_USER ?? '', password: config.ZB_PASSWORD ?? '', serialnum: config.ZB_SERIALNUM },
    logger: createLogger(config.ZB_LOG_LEVEL),
    naiveDetailLoads: true,
  });
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
