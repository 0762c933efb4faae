import { z } from 'zod';

/**
 * Configuration from the environment, validated once at start-up. A bad value stops the process with a message that
 * names the variable. Every name here is public contract (README lists them).
 */
const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max).default(def);
const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'])
    .default(def ? 'true' : 'false')
    .transform((v) => ['true', '1', 'yes', 'on'].includes(v));
const optionalText = z.string().trim().min(1).optional();

const schema = z
  .object({
    NODE_ENV: z.string().default('development'),
    PORT: int(4001, 0, 65535),
    HOST: z.string().default('0.0.0.0'),
    ZB_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
    ZB_USER: optionalText,
    ZB_PASSWORD: optionalText,
    ZB_SERIALNUM: z.string().max(20, 'at most 20 characters (the ERP limit)').default('zb-aftersale-sg'),
    ZB_LOGIN_PATH: z.string().startsWith('/').default('/webapi/v3/ov1/login'),
    ZB_CONTENT_TYPE: z.string().default('application/zsml; charset=utf-8'),
    ZB_TIMEOUT_MS: int(15000, 100),
    ZB_CONNECT_TIMEOUT_MS: int(3000, 50),
    ZB_MAX_CONNECTIONS: int(16, 1, 1024),
    ZB_MAX_RESPONSE_BYTES: int(20 * 1024 * 1024, 1024),
    ZB_DETAIL_CONCURRENCY: int(8, 1, 256),
    ZB_MAX_CONCURRENT_CALLS: int(32, 1, 4096),
    ZB_QUEUE_TIMEOUT_MS: int(5000, 1),
    ZB_RETRIES: int(2, 0, 10),
    ZB_RETRY_BASE_MS: int(100, 1),
    ZB_RETRY_MAX_MS: int(2000, 1),
    ZB_REQUEST_DEADLINE_MS: int(30000, 100),
    ZB_MAX_INFLIGHT_REQUESTS: int(128, 1, 100000),
    ZB_INFLIGHT_BUDGET_BYTES: int(64 * 1024 * 1024, 1024 * 1024),
    ZB_MAX_ERP_CALLS_PER_OPERATION: int(50, 1, 10000),
    ZB_MAX_ITEMS_PER_OPERATION: int(1000, 1, 100000),
    ZB_MAX_REPRESENTATIONS: int(100, 1, 10000),
    ZB_DOCUMENT_CACHE_BYTES: int(4 * 1024 * 1024, 0),
    ZB_BODY_TIMEOUT_MS: int(10000, 100),
    ZB_KEEP_ALIVE_TIMEOUT_MS: int(5000, 100),
    ZB_MAX_CLIENT_CONNECTIONS: int(256, 1, 100000),
    ZB_SHUTDOWN_TIMEOUT_MS: int(40000, 1000),
    ZB_LOGIN_BACKOFF_MS: int(60000, 100),
    ZB_LOGIN_BACKOFF_MAX_MS: int(3600000, 100),
    ZB_BREAKER_ERROR_PERCENT: int(50, 1, 100),
    ZB_BREAKER_VOLUME: int(20, 1),
    ZB_BREAKER_RESET_MS: int(10000, 10),
    ZB_BREAKER_WINDOW_MS: int(10000, 100),
    ZB_COALESCE: bool(true),
    ZB_CACHE_TTL_MS: int(0, 0),
    ZB_CACHE_STALE_MS: int(0, 0),
    ZB_CACHE_MAX_ENTRIES: int(1000, 1),
    ZB_CACHE_MAX_BYTES: int(16 * 1024 * 1024, 1024),
    ZB_SESSION_HEADER_REQUIRED: bool(false),
    ZB_IDEMPOTENCY_TTL_MS: int(24 * 3600 * 1000, 1000),
    ZB_IDEMPOTENCY_MAX_KEYS: int(10000, 1),
    ZB_IDEMPOTENCY_MAX_BYTES: int(16 * 1024 * 1024, 64 * 1024),
    ZB_FIELD_MAP: optionalText,
    ZB_TIMEZONE: z.string().default('Asia/Shanghai'),
    ZB_SAVE_SUCCESS_PATTERN: z.string().default('成功'),
    ZB_NOT_FOUND_PATTERN: z.string().default('已被删除|不存在'),
    ZB_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    ZB_INTROSPECTION: bool(true).optional(),
    ZB_MAX_DEPTH: int(10, 1),
    ZB_MAX_ALIASES: int(30, 1),
    ZB_MAX_COST: int(5000, 1),
    ZB_MAX_TOKENS: int(2000, 1),
    ZB_MAX_DIRECTIVES: int(20, 1),
    ZB_BODY_LIMIT_BYTES: int(100 * 1024, 1024),
    ZB_MAX_PAGE_SIZE: int(100, 1, 1000),
    SIMULATOR_USER: z.string().default('admin'),
    SIMULATOR_PASSWORD: z.string().default('zb-sim-admin'),
    SIMULATOR_LATENCY_MS: int(0, 0),
  })
  .superRefine((v, ctx) => {
    if (v.ZB_BASE_URL && (!v.ZB_USER || !v.ZB_PASSWORD) && !v.ZB_SESSION_HEADER_REQUIRED) {
      ctx.addIssue({ code: 'custom', path: ['ZB_USER'], message: 'ZB_USER and ZB_PASSWORD are required with ZB_BASE_URL (unless ZB_SESSION_HEADER_REQUIRED=true)' });
    }
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: v.ZB_TIMEZONE });
    } catch {
      ctx.addIssue({ code: 'custom', path: ['ZB_TIMEZONE'], message: `unknown IANA time zone '${v.ZB_TIMEZONE}'` });
    }
    for (const key of ['ZB_SAVE_SUCCESS_PATTERN', 'ZB_NOT_FOUND_PATTERN'] as const) {
      try {
        new RegExp(v[key]);
      } catch {
        ctx.addIssue({ code: 'custom', path: [key], message: 'not a valid regular expression' });
      }
    }
  });

export type Config = z.infer<typeof schema>;

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings count as unset, as most deployment tools write them.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}
