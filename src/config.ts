import { z } from 'zod';

/**
 * Configuration from the environment, validated once at start-up. A bad value stops the process with a message that
 * names the variable. Every name here is public contract (README lists them).
 */
// Digits only: z.coerce.number would read ' ' as 0 (a random port) and accept '1e3', '0x10' or ' 12 '.
const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9]+$/, { error: (iss) => `must be a whole number in plain digits (no spaces, signs, units or exponents), got ${JSON.stringify(iss.input)}` })
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => wholeNumber(min, max).default(def);
// No default here: the effective value depends on another variable and is resolved below.
const optionalInt = (min = 0, max = Number.MAX_SAFE_INTEGER) => wholeNumber(min, max).optional();
const BOOL_WORDS = ['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'] as const;
const isOn = (v: (typeof BOOL_WORDS)[number]) => v === 'true' || v === '1' || v === 'yes' || v === 'on';
const bool = (def: boolean) => z.enum(BOOL_WORDS).default(def ? 'true' : 'false').transform(isOn);
// Never `bool(x).optional()`: under zod 4 a default inside .optional() still applies, so the value is never undefined.
const optionalBool = z.enum(BOOL_WORDS).transform(isOn).optional();
const optionalText = z.string().trim().min(1).optional();
// A comma-separated list of http(s) URL prefixes (no credentials in them); unset is the empty list.
const urlPrefixes = z
  .string()
  .default('')
  .transform((text, ctx) => {
    const items = text.split(',').map((item) => item.trim()).filter((item) => item !== '');
    items.forEach((item, index) => {
      let url: URL | undefined;
      try {
        url = new URL(item);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash) {
        // The entry is not echoed: it may hold a password.
        ctx.addIssue({ code: 'custom', message: `must be comma-separated http(s) URLs without credentials, query or fragment (entry ${index + 1} is not)`, input: text });
      }
    });
    return items;
  });

export const NODE_ENVS = ['development', 'production', 'test'] as const;

const DEFAULTS = {
  /** Sockets to the ERP: the one number to size (README "Sizing the ERP connections"); the call caps follow it. */
  ZB_MAX_CONNECTIONS: 16,
  /** Largest socket count and process-wide call cap: undici's pool and p-limit take any number, an IIS does not. */
  MAX_CONNECTIONS: 1024,
  ZB_RETRY_BASE_MS: 100,
  ZB_RETRY_MAX_MS: 2000,
  ZB_LOGIN_BACKOFF_MS: 60000,
  ZB_LOGIN_BACKOFF_MAX_MS: 3600000,
  ZB_SHUTDOWN_TIMEOUT_MS: 40000,
  /** Shutdown grace beyond a save plus its confirming re-read (2 x ZB_TIMEOUT_MS); 40000 = 2 x 15000 + 10000. */
  SHUTDOWN_MARGIN_MS: 10000,
} as const;

const variables = z.object({
  NODE_ENV: z.enum(NODE_ENVS, { error: `must be one of ${NODE_ENVS.join(', ')}` }).default('development'),
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
  // The ERP capacity: sockets, the process-wide call cap and each request's share of it, resolved together below.
  ZB_MAX_CONNECTIONS: optionalInt(1, DEFAULTS.MAX_CONNECTIONS),
  ZB_MAX_RESPONSE_BYTES: int(20 * 1024 * 1024, 1024),
  ZB_DETAIL_CONCURRENCY: optionalInt(1, 256),
  ZB_MAX_CONCURRENT_CALLS: optionalInt(1, DEFAULTS.MAX_CONNECTIONS),
  ZB_QUEUE_TIMEOUT_MS: int(5000, 1),
  ZB_RETRIES: int(2, 0, 10),
  ZB_RETRY_BASE_MS: optionalInt(1),
  ZB_RETRY_MAX_MS: optionalInt(1),
  ZB_REQUEST_DEADLINE_MS: int(30000, 100),
  ZB_MAX_INFLIGHT_REQUESTS: int(128, 1, 100000),
  ZB_INFLIGHT_BUDGET_BYTES: int(48 * 1024 * 1024, 1024 * 1024),
  ZB_MAX_ERP_CALLS_PER_OPERATION: int(50, 1, 10000),
  ZB_MAX_ITEMS_PER_OPERATION: int(1000, 1, 100000),
  ZB_MAX_REPRESENTATIONS: int(100, 1, 10000),
  ZB_DOCUMENT_CACHE_BYTES: int(4 * 1024 * 1024, 0),
  ZB_BODY_TIMEOUT_MS: int(10000, 100),
  ZB_KEEP_ALIVE_TIMEOUT_MS: int(5000, 100),
  ZB_MAX_CLIENT_CONNECTIONS: int(256, 1, 100000),
  ZB_SHUTDOWN_TIMEOUT_MS: optionalInt(1000),
  ZB_SHUTDOWN_DRAIN_MS: int(0, 0, 600000),
  ZB_LOGIN_BACKOFF_MS: optionalInt(100),
  ZB_LOGIN_BACKOFF_MAX_MS: optionalInt(100),
  ZB_BREAKER_ERROR_PERCENT: int(50, 1, 100),
  ZB_BREAKER_VOLUME: int(20, 1),
  ZB_BREAKER_RESET_MS: int(10000, 10),
  ZB_BREAKER_WINDOW_MS: int(10000, 100),
  ZB_COALESCE: bool(true),
  ZB_CACHE_TTL_MS: int(0, 0),
  ZB_CACHE_STALE_MS: int(0, 0),
  ZB_CACHE_MAX_ENTRIES: int(1000, 1),
  ZB_CACHE_MAX_BYTES: int(8 * 1024 * 1024, 1024),
  ZB_SESSION_HEADER_REQUIRED: optionalBool,
  ZB_TRUST_USER_HEADER: bool(false),
  ZB_IDEMPOTENCY_TTL_MS: int(24 * 3600 * 1000, 1000),
  ZB_IDEMPOTENCY_MAX_KEYS: int(10000, 1),
  ZB_IDEMPOTENCY_MAX_BYTES: int(8 * 1024 * 1024, 64 * 1024),
  ZB_FIELD_MAP: optionalText,
  ZB_TIMEZONE: z.string().default('Asia/Shanghai'),
  ZB_SAVE_SUCCESS_PATTERN: z.string().default('成功'),
  ZB_NOT_FOUND_PATTERN: z.string().default('已被删除|不存在'),
  ZB_LOG_PRETTY: bool(false),
  ZB_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ZB_INTROSPECTION: optionalBool,
  ZB_MAX_DEPTH: int(10, 1),
  ZB_MAX_ALIASES: int(30, 1),
  ZB_MAX_COST: int(5000, 1),
  ZB_MAX_TOKENS: int(2000, 1),
  ZB_MAX_DIRECTIVES: int(20, 1),
  ZB_BODY_LIMIT_BYTES: int(100 * 1024, 1024),
  ZB_MAX_PAGE_SIZE: int(100, 1, 1000),
  // Fleet (README "Running several replicas"): unset ZB_REDIS_URL keeps every guarantee in process, as before.
  ZB_REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional(),
  ZB_REDIS_KEY_PREFIX: z.string().regex(/^[\w.:-]{1,64}$/, 'at most 64 letters, digits, _ . : -').default('zb:'),
  ZB_REDIS_COMMAND_TIMEOUT_MS: int(500, 10, 60000),
  ZB_FLEET_MAX_CONCURRENT_CALLS: optionalInt(1, 4096),
  ZB_FLEET_PERMIT_LEASE_MS: int(3000, 500, 600000),
  // Live updates (README "Live updates"): the change feed behind Subscription.afterSaleServiceChanged and its graphql-ws
  // transport. Kept in one block of its own.
  ZB_FEED_POLL_MS: int(5000, 10, 3600000),
  ZB_FEED_MAX_ROWS: int(200, 1, 10000),
  ZB_FEED_BUFFER_EVENTS: int(256, 1, 100000),
  ZB_FEED_BUFFER_BYTES: int(256 * 1024, 4096, 64 * 1024 * 1024),
  ZB_FEED_MAX_SUBSCRIPTIONS: int(256, 1, 100000),
  ZB_FEED_MAX_SUBSCRIPTIONS_PER_IDENTITY: int(32, 1, 100000),
  ZB_FEED_MAX_POLLERS: int(64, 1, 10000),
  ZB_FEED_MAX_POLLERS_PER_IDENTITY: int(8, 1, 10000),
  ZB_FEED_WS_MAX_CONNECTIONS: int(128, 1, 100000),
  ZB_FEED_WS_INIT_TIMEOUT_MS: int(3000, 100, 600000),
  // SSE (graphql-sse on GET/POST /graphql, Hive Gateway's default subgraph transport): streams open at once.
  ZB_FEED_SSE_MAX_STREAMS: int(128, 1, 100000),
  // Apollo Router callback mode: the router's callback URL prefixes (public_url + path); unset = callback mode off.
  ZB_FEED_CALLBACK_URLS: urlPrefixes,
  ZB_FEED_CALLBACK_MAX_SUBSCRIPTIONS: int(256, 1, 100000),
  SIMULATOR_USER: z.string().default('admin'),
  SIMULATOR_PASSWORD: z.string().default('zb-sim-admin'),
  SIMULATOR_LATENCY_MS: int(0, 0),
});

/**
 * The ERP capacity settings, derived from one another (README "Sizing the ERP connections"):
 * - ZB_MAX_CONNECTIONS (sockets, default 16) is what the ERP sees: at most that many calls of this process at once.
 * - ZB_MAX_CONCURRENT_CALLS (the process-wide call cap) defaults to the sockets. More calls than sockets would only
 *   wait inside undici's pool for a socket: outside ZB_QUEUE_TIMEOUT_MS (UPSTREAM_BUSY) and `zb_erp_queued`, counted
 *   as in flight, and holding a fleet permit (ZB_FLEET_MAX_CONCURRENT_CALLS) meanwhile; so it may not exceed them.
 *   Set alone, the sockets follow it up (the calls the operator asked for reach the ERP, and no more).
 * - ZB_DETAIL_CONCURRENCY (one request's ERP calls at once) defaults to half the call cap, rounded up: two requests
 *   keep every socket busy, and no one request holds more than half of them (1 -> 1, 4 -> 2, 16 -> 8). It may not
 *   exceed the call cap; the cap is never raised to fit it (that would load the ERP more than the operator chose).
 * Explicit values are never changed: when they contradict, start-up stops and names the variable.
 */
function erpCapacity(v: z.output<typeof variables>, issue: (path: string, message: string) => void): { sockets: number; calls: number; detail: number } {
  const sockets = v.ZB_MAX_CONNECTIONS ?? Math.max(DEFAULTS.ZB_MAX_CONNECTIONS, v.ZB_MAX_CONCURRENT_CALLS ?? 0);
  const calls = v.ZB_MAX_CONCURRENT_CALLS ?? sockets;
  if (calls > sockets) {
    issue(
      'ZB_MAX_CONCURRENT_CALLS',
      `must be <= ZB_MAX_CONNECTIONS (${calls} > ${sockets}): calls beyond the sockets would only wait inside the HTTP client, outside ZB_QUEUE_TIMEOUT_MS; raise ZB_MAX_CONNECTIONS or leave ZB_MAX_CONCURRENT_CALLS unset (it follows the sockets)`,
    );
  }
  const detail = v.ZB_DETAIL_CONCURRENCY ?? Math.ceil(calls / 2);
  if (detail > calls) {
    issue('ZB_DETAIL_CONCURRENCY', `must be <= ZB_MAX_CONCURRENT_CALLS (${detail} > ${calls}); it is each request's share of that cap (which defaults to ZB_MAX_CONNECTIONS)`);
  }
  return { sockets, calls, detail };
}

/** Every variable loadConfig reads. */
export const CONFIG_VARIABLES = Object.keys(variables.shape) as ReadonlyArray<keyof typeof variables.shape>;

const schema = variables.transform((v, ctx) => {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message, input: v });
  const production = v.NODE_ENV === 'production';

  // Pairs: a value left unset follows its partner where that is safe (a maximum is never below its base, the
  // per-request share never above the process cap, the shutdown grace grows with the ERP timeout). Explicit values
  // are never changed: when they contradict, start-up stops.
  const retryMax = v.ZB_RETRY_MAX_MS ?? Math.max(DEFAULTS.ZB_RETRY_MAX_MS, v.ZB_RETRY_BASE_MS ?? 0);
  const retryBase = v.ZB_RETRY_BASE_MS ?? Math.min(DEFAULTS.ZB_RETRY_BASE_MS, retryMax);
  if (retryMax < retryBase) issue('ZB_RETRY_MAX_MS', `must be >= ZB_RETRY_BASE_MS (${retryMax} < ${retryBase})`);

  const loginMax = v.ZB_LOGIN_BACKOFF_MAX_MS ?? Math.max(DEFAULTS.ZB_LOGIN_BACKOFF_MAX_MS, v.ZB_LOGIN_BACKOFF_MS ?? 0);
  const loginBase = v.ZB_LOGIN_BACKOFF_MS ?? Math.min(DEFAULTS.ZB_LOGIN_BACKOFF_MS, loginMax);
  if (loginMax < loginBase) issue('ZB_LOGIN_BACKOFF_MAX_MS', `must be >= ZB_LOGIN_BACKOFF_MS (${loginMax} < ${loginBase})`);

  const { sockets, calls, detail } = erpCapacity(v, issue);

  // A save plus its confirming re-read must fit in the shutdown grace. The ERP timeout is not shrunk implicitly.
  const shutdown = v.ZB_SHUTDOWN_TIMEOUT_MS ?? Math.max(DEFAULTS.ZB_SHUTDOWN_TIMEOUT_MS, 2 * v.ZB_TIMEOUT_MS + DEFAULTS.SHUTDOWN_MARGIN_MS);
  if (shutdown <= 2 * v.ZB_TIMEOUT_MS) {
    issue('ZB_SHUTDOWN_TIMEOUT_MS', `must be > 2 x ZB_TIMEOUT_MS (${shutdown} <= 2 x ${v.ZB_TIMEOUT_MS}), so a save and its confirming re-read can finish`);
  }

  // A fleet-wide cap is kept in Redis: without it there is no fleet to cap (ZB_MAX_CONCURRENT_CALLS caps the process).
  if (v.ZB_FLEET_MAX_CONCURRENT_CALLS !== undefined && !v.ZB_REDIS_URL) {
    issue('ZB_FLEET_MAX_CONCURRENT_CALLS', 'needs ZB_REDIS_URL (the fleet budget is kept in Redis)');
  }

  // Off in production unless explicitly on/off; an explicit value always wins.
  const introspection = v.ZB_INTROSPECTION ?? !production;
  const sessionHeaderRequired = v.ZB_SESSION_HEADER_REQUIRED ?? production;

  if (v.ZB_BASE_URL && (!v.ZB_USER || !v.ZB_PASSWORD) && !sessionHeaderRequired) {
    issue('ZB_USER', 'ZB_USER and ZB_PASSWORD are required with ZB_BASE_URL (unless ZB_SESSION_HEADER_REQUIRED=true)');
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: v.ZB_TIMEZONE });
  } catch {
    issue('ZB_TIMEZONE', `unknown IANA time zone '${v.ZB_TIMEZONE}'`);
  }
  for (const key of ['ZB_SAVE_SUCCESS_PATTERN', 'ZB_NOT_FOUND_PATTERN'] as const) {
    try {
      new RegExp(v[key]);
    } catch {
      issue(key, 'not a valid regular expression');
    }
  }

  return {
    ...v,
    ZB_MAX_CONNECTIONS: sockets,
    ZB_MAX_CONCURRENT_CALLS: calls,
    ZB_DETAIL_CONCURRENCY: detail,
    ZB_RETRY_BASE_MS: retryBase,
    ZB_RETRY_MAX_MS: retryMax,
    ZB_LOGIN_BACKOFF_MS: loginBase,
    ZB_LOGIN_BACKOFF_MAX_MS: loginMax,
    ZB_SHUTDOWN_TIMEOUT_MS: shutdown,
    /** Effective value: ZB_INTROSPECTION if set, else on unless NODE_ENV=production. Also gates the landing page. */
    ZB_INTROSPECTION: introspection,
    /** Effective value: ZB_SESSION_HEADER_REQUIRED if set, else on exactly when NODE_ENV=production. */
    ZB_SESSION_HEADER_REQUIRED: sessionHeaderRequired,
  };
});

/** The effective configuration: every value resolved (no `undefined` left for settings that have a default). */
export type Config = z.output<typeof schema>;

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
