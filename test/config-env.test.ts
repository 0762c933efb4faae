import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../src/config';
import { runUntilExit, stopAllSubgraphs } from './support/spawn-subgraph';

/** Configuration as users set it: environment strings, validated by loadConfig (and by main for the exit code). */
function rejects(env: Record<string, string>, variable: string, message?: RegExp): void {
  let error: unknown;
  try {
    loadConfig(env);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ConfigError);
  const text = (error as Error).message;
  expect(text).toMatch(new RegExp(`^\\s+${variable}: `, 'm'));
  if (message) expect(text).toMatch(message);
}

afterAll(() => stopAllSubgraphs());

describe("`PORT=' '` binds a random port", () => {
  it.each([' ', '   ', '\t', '1 2', ' 4001', '4001 ', '1e3', '0x10', '12ms', '-1', '+80', '4001.0', '٤٠٠١'])('rejects PORT=%j', (port) => {
    rejects({ PORT: port }, 'PORT', /digits/);
  });

  it('applies the same digits-only rule to every number', () => {
    rejects({ ZB_TIMEOUT_MS: ' ' }, 'ZB_TIMEOUT_MS');
    rejects({ ZB_MAX_PAGE_SIZE: '1e2' }, 'ZB_MAX_PAGE_SIZE');
    rejects({ ZB_RETRY_BASE_MS: '0x10' }, 'ZB_RETRY_BASE_MS');
    rejects({ ZB_DETAIL_CONCURRENCY: '4 ' }, 'ZB_DETAIL_CONCURRENCY');
    rejects({ ZB_SHUTDOWN_TIMEOUT_MS: '60s' }, 'ZB_SHUTDOWN_TIMEOUT_MS');
  });

  it('accepts plain digits, keeps range checks, and treats an empty value as unset', () => {
    expect(loadConfig({ PORT: '8080' }).PORT).toBe(8080);
    expect(loadConfig({ PORT: '0' }).PORT).toBe(0);
    expect(loadConfig({ PORT: '' }).PORT).toBe(4001);
    expect(loadConfig({}).PORT).toBe(4001);
    rejects({ PORT: '65536' }, 'PORT');
  });

  it('main exits with code 2 and names PORT', async () => {
    const { code, stderr } = await runUntilExit({ PORT: ' ' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^\s+PORT: .*digits/m);
  }, 60_000);
});

describe('`ZB_RETRY_MAX_MS < ZB_RETRY_BASE_MS` is accepted', () => {
  it('rejects retry max below retry base', () => {
    rejects({ ZB_RETRY_BASE_MS: '500', ZB_RETRY_MAX_MS: '100' }, 'ZB_RETRY_MAX_MS', /ZB_RETRY_BASE_MS/);
    rejects({ ZB_RETRY_MAX_MS: '50', ZB_RETRY_BASE_MS: '51' }, 'ZB_RETRY_MAX_MS');
    expect(loadConfig({ ZB_RETRY_BASE_MS: '100', ZB_RETRY_MAX_MS: '100' }).ZB_RETRY_MAX_MS).toBe(100);
  });

  it('rejects detail concurrency above the process-wide ERP call cap', () => {
    rejects({ ZB_DETAIL_CONCURRENCY: '16', ZB_MAX_CONCURRENT_CALLS: '8' }, 'ZB_DETAIL_CONCURRENCY', /ZB_MAX_CONCURRENT_CALLS/);
    // Set alone above the default cap (32): the cap is not raised behind the operator's back.
    rejects({ ZB_DETAIL_CONCURRENCY: '64' }, 'ZB_DETAIL_CONCURRENCY', /ZB_MAX_CONCURRENT_CALLS/);
    expect(loadConfig({ ZB_DETAIL_CONCURRENCY: '8', ZB_MAX_CONCURRENT_CALLS: '8' }).ZB_DETAIL_CONCURRENCY).toBe(8);
  });

  it('rejects login backoff max below login backoff', () => {
    rejects({ ZB_LOGIN_BACKOFF_MS: '60000', ZB_LOGIN_BACKOFF_MAX_MS: '1000' }, 'ZB_LOGIN_BACKOFF_MAX_MS', /ZB_LOGIN_BACKOFF_MS/);
  });

  it('rejects a shutdown timeout that cannot fit a save and its confirming re-read', () => {
    rejects({ ZB_TIMEOUT_MS: '15000', ZB_SHUTDOWN_TIMEOUT_MS: '30000' }, 'ZB_SHUTDOWN_TIMEOUT_MS', /ZB_TIMEOUT_MS/);
    rejects({ ZB_TIMEOUT_MS: '30000', ZB_SHUTDOWN_TIMEOUT_MS: '40000' }, 'ZB_SHUTDOWN_TIMEOUT_MS');
    // Set alone below the default ERP timeout (2 x 15000): the ERP timeout is not shrunk behind the operator's back.
    rejects({ ZB_SHUTDOWN_TIMEOUT_MS: '20000' }, 'ZB_SHUTDOWN_TIMEOUT_MS');
    expect(loadConfig({ ZB_TIMEOUT_MS: '15000', ZB_SHUTDOWN_TIMEOUT_MS: '30001' }).ZB_SHUTDOWN_TIMEOUT_MS).toBe(30001);
  });

  it('a value left unset follows its explicit partner where that is safe', () => {
    const defaults = loadConfig({});
    expect(defaults).toMatchObject({
      ZB_RETRY_BASE_MS: 100,
      ZB_RETRY_MAX_MS: 2000,
      ZB_DETAIL_CONCURRENCY: 8,
      ZB_MAX_CONCURRENT_CALLS: 32,
      ZB_LOGIN_BACKOFF_MS: 60000,
      ZB_LOGIN_BACKOFF_MAX_MS: 3600000,
      ZB_TIMEOUT_MS: 15000,
      ZB_SHUTDOWN_TIMEOUT_MS: 40000,
    });
    expect(loadConfig({ ZB_RETRY_BASE_MS: '5000' }).ZB_RETRY_MAX_MS).toBe(5000);
    expect(loadConfig({ ZB_RETRY_MAX_MS: '50' }).ZB_RETRY_BASE_MS).toBe(50);
    expect(loadConfig({ ZB_MAX_CONCURRENT_CALLS: '1' }).ZB_DETAIL_CONCURRENCY).toBe(1);
    expect(loadConfig({ ZB_LOGIN_BACKOFF_MS: '7200000' }).ZB_LOGIN_BACKOFF_MAX_MS).toBe(7200000);
    expect(loadConfig({ ZB_LOGIN_BACKOFF_MAX_MS: '1000' }).ZB_LOGIN_BACKOFF_MS).toBe(1000);
    expect(loadConfig({ ZB_TIMEOUT_MS: '30000' }).ZB_SHUTDOWN_TIMEOUT_MS).toBe(70000);
  });
});

describe('`NODE_ENV=prod` silently means development', () => {
  it.each(['prod', 'Production', 'PRODUCTION', 'staging', 'dev', ' production'])('rejects NODE_ENV=%j, listing the accepted values', (value) => {
    rejects({ NODE_ENV: value }, 'NODE_ENV', /development, production, test/);
  });

  it.each(['development', 'production', 'test'] as const)('accepts NODE_ENV=%s', (value) => {
    expect(loadConfig({ NODE_ENV: value }).NODE_ENV).toBe(value);
  });

  it('defaults to development', () => {
    expect(loadConfig({}).NODE_ENV).toBe('development');
  });
});

describe('Production switches do not switch (resolved in config)', () => {
  it.each([
    [{}, true, false],
    [{ NODE_ENV: 'test' }, true, false],
    [{ NODE_ENV: 'production' }, false, true],
    [{ NODE_ENV: 'production', ZB_INTROSPECTION: 'true', ZB_SESSION_HEADER_REQUIRED: 'false' }, true, false],
    [{ NODE_ENV: 'production', ZB_INTROSPECTION: '1', ZB_SESSION_HEADER_REQUIRED: 'off' }, true, false],
    [{ ZB_INTROSPECTION: 'false', ZB_SESSION_HEADER_REQUIRED: 'true' }, false, true],
    [{ NODE_ENV: 'production', ZB_INTROSPECTION: '', ZB_SESSION_HEADER_REQUIRED: '' }, false, true],
  ])('%j -> introspection %s, session header required %s', (env, introspection, headerRequired) => {
    const config = loadConfig(env);
    expect(config.ZB_INTROSPECTION).toBe(introspection);
    expect(config.ZB_SESSION_HEADER_REQUIRED).toBe(headerRequired);
  });

  it('rejects words that are not booleans', () => {
    rejects({ ZB_INTROSPECTION: 'maybe' }, 'ZB_INTROSPECTION');
    rejects({ ZB_SESSION_HEADER_REQUIRED: 'required' }, 'ZB_SESSION_HEADER_REQUIRED');
  });

  it('fleet settings: a Redis URL and prefix, and no fleet cap without Redis', () => {
    expect(loadConfig({}).ZB_REDIS_KEY_PREFIX).toBe('zb:');
    expect(loadConfig({ ZB_REDIS_URL: 'redis://127.0.0.1:6379/0', ZB_FLEET_MAX_CONCURRENT_CALLS: '6' }).ZB_FLEET_MAX_CONCURRENT_CALLS).toBe(6);
    rejects({ ZB_REDIS_URL: 'http://127.0.0.1:6379' }, 'ZB_REDIS_URL');
    rejects({ ZB_FLEET_MAX_CONCURRENT_CALLS: '6' }, 'ZB_FLEET_MAX_CONCURRENT_CALLS');
  });

  it('in production an ERP without a service account is valid (every request brings its session)', () => {
    expect(loadConfig({ NODE_ENV: 'production', ZB_BASE_URL: 'https://erp.example.com' }).ZB_SESSION_HEADER_REQUIRED).toBe(true);
    rejects({ NODE_ENV: 'production', ZB_BASE_URL: 'https://erp.example.com', ZB_SESSION_HEADER_REQUIRED: 'false' }, 'ZB_USER');
    rejects({ ZB_BASE_URL: 'https://erp.example.com' }, 'ZB_USER');
  });

  it('no other setting is left undefined when unset, except those that have no default by design', () => {
    // Guards the zod 4 trap: a setting must be either defaulted/resolved in config or deliberately optional.
    const config = loadConfig({});
    const unset = CONFIG_VARIABLES.filter((k) => config[k] === undefined);
    expect(unset).toEqual(['ZB_BASE_URL', 'ZB_USER', 'ZB_PASSWORD', 'ZB_FIELD_MAP', 'ZB_REDIS_URL', 'ZB_FLEET_MAX_CONCURRENT_CALLS']);
  });
});

describe('Live updates settings (ZB_FEED_*)', () => {
  it('defaults when unset', () => {
    expect(loadConfig({})).toMatchObject({
      ZB_FEED_POLL_MS: 5000,
      ZB_FEED_MAX_ROWS: 200,
      ZB_FEED_BUFFER_EVENTS: 256,
      ZB_FEED_BUFFER_BYTES: 262144,
      ZB_FEED_MAX_SUBSCRIPTIONS: 256,
      ZB_FEED_MAX_SUBSCRIPTIONS_PER_IDENTITY: 32,
      ZB_FEED_MAX_POLLERS: 64,
      ZB_FEED_MAX_POLLERS_PER_IDENTITY: 8,
      ZB_FEED_WS_MAX_CONNECTIONS: 128,
      ZB_FEED_WS_INIT_TIMEOUT_MS: 3000,
      ZB_FEED_SSE_MAX_STREAMS: 128,
      // Callback mode off: every callback request refused.
      ZB_FEED_CALLBACK_URLS: [],
      ZB_FEED_CALLBACK_MAX_SUBSCRIPTIONS: 256,
    });
  });

  it('reads each from the environment', () => {
    const config = loadConfig({
      ZB_FEED_POLL_MS: '250',
      ZB_FEED_MAX_ROWS: '40',
      ZB_FEED_BUFFER_EVENTS: '10',
      ZB_FEED_BUFFER_BYTES: '8192',
      ZB_FEED_MAX_SUBSCRIPTIONS: '3',
      ZB_FEED_MAX_SUBSCRIPTIONS_PER_IDENTITY: '2',
      ZB_FEED_MAX_POLLERS: '5',
      ZB_FEED_MAX_POLLERS_PER_IDENTITY: '1',
      ZB_FEED_WS_MAX_CONNECTIONS: '7',
      ZB_FEED_WS_INIT_TIMEOUT_MS: '500',
      ZB_FEED_SSE_MAX_STREAMS: '9',
      ZB_FEED_CALLBACK_URLS: ' http://router-a:4000/callback , https://router.example/cb/ ',
      ZB_FEED_CALLBACK_MAX_SUBSCRIPTIONS: '11',
    });
    expect(config).toMatchObject({
      ZB_FEED_POLL_MS: 250,
      ZB_FEED_MAX_ROWS: 40,
      ZB_FEED_BUFFER_EVENTS: 10,
      ZB_FEED_BUFFER_BYTES: 8192,
      ZB_FEED_MAX_SUBSCRIPTIONS: 3,
      ZB_FEED_MAX_SUBSCRIPTIONS_PER_IDENTITY: 2,
      ZB_FEED_MAX_POLLERS: 5,
      ZB_FEED_MAX_POLLERS_PER_IDENTITY: 1,
      ZB_FEED_WS_MAX_CONNECTIONS: 7,
      ZB_FEED_WS_INIT_TIMEOUT_MS: 500,
      ZB_FEED_SSE_MAX_STREAMS: 9,
      ZB_FEED_CALLBACK_URLS: ['http://router-a:4000/callback', 'https://router.example/cb/'],
      ZB_FEED_CALLBACK_MAX_SUBSCRIPTIONS: 11,
    });
  });

  it('refuses what is not a plain number in range', () => {
    rejects({ ZB_FEED_POLL_MS: '5s' }, 'ZB_FEED_POLL_MS', /digits/);
    rejects({ ZB_FEED_POLL_MS: '5' }, 'ZB_FEED_POLL_MS');
    rejects({ ZB_FEED_MAX_ROWS: '0' }, 'ZB_FEED_MAX_ROWS');
    rejects({ ZB_FEED_BUFFER_BYTES: '1024' }, 'ZB_FEED_BUFFER_BYTES');
    rejects({ ZB_FEED_BUFFER_EVENTS: '-1' }, 'ZB_FEED_BUFFER_EVENTS');
    rejects({ ZB_FEED_MAX_SUBSCRIPTIONS: '1e3' }, 'ZB_FEED_MAX_SUBSCRIPTIONS');
    rejects({ ZB_FEED_WS_INIT_TIMEOUT_MS: '0' }, 'ZB_FEED_WS_INIT_TIMEOUT_MS');
    rejects({ ZB_FEED_SSE_MAX_STREAMS: '0' }, 'ZB_FEED_SSE_MAX_STREAMS');
    rejects({ ZB_FEED_CALLBACK_MAX_SUBSCRIPTIONS: '10k' }, 'ZB_FEED_CALLBACK_MAX_SUBSCRIPTIONS', /digits/);
  });

  it('ZB_FEED_CALLBACK_URLS takes only http(s) URL prefixes without credentials, query or fragment', () => {
    rejects({ ZB_FEED_CALLBACK_URLS: 'router:4000/callback' }, 'ZB_FEED_CALLBACK_URLS', /http\(s\) URLs/);
    rejects({ ZB_FEED_CALLBACK_URLS: 'http://ok/cb,ftp://router/cb' }, 'ZB_FEED_CALLBACK_URLS');
    rejects({ ZB_FEED_CALLBACK_URLS: 'http://user:secret@router/cb' }, 'ZB_FEED_CALLBACK_URLS', /entry 1 is not/);
    expect(() => loadConfig({ ZB_FEED_CALLBACK_URLS: 'http://ok/cb,http://user:secret@router/cb' })).toThrow(/^(?![\s\S]*secret)[\s\S]*entry 2 is not/);
    rejects({ ZB_FEED_CALLBACK_URLS: 'http://router/cb?x=1' }, 'ZB_FEED_CALLBACK_URLS');
    // Commas and blanks only: no prefix, callback mode off.
    expect(loadConfig({ ZB_FEED_CALLBACK_URLS: ' , ' }).ZB_FEED_CALLBACK_URLS).toEqual([]);
  });
});
