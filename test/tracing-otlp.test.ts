import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ensureBuilt, startSubgraph, stopAllSubgraphs, type ChildEnv } from './support/spawn-subgraph';

/**
 * Tracing as a deployment turns it on: only the standard OTEL_* variables, read by the SDK in the shipped entry point
 * (dist/main.js, embedded simulator). A tiny collector in the test receives the OTLP/HTTP exports; with http/json the
 * spans are read back, with http/protobuf the trace id's bytes are found in the message. Without the variables no SDK
 * module is even loaded.
 */
const ROOT = join(__dirname, '..');

interface Export {
  path: string;
  contentType: string;
  body: Buffer;
}
const received: Export[] = [];
let collector: Server;
let endpoint: string;

beforeAll(async () => {
  ensureBuilt();
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: String(req.headers['content-type'] ?? ''), body: Buffer.concat(chunks) });
      // An empty ExportTraceServiceResponse: success, nothing rejected.
      const json = String(req.headers['content-type']).includes('json');
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
      res.end(json ? '{}' : '');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await stopAllSubgraphs();
  await new Promise((resolve) => collector.close(resolve));
});

function caller(): { traceId: string; parentId: string; traceparent: string } {
  const traceId = randomBytes(16).toString('hex');
  const parentId = randomBytes(8).toString('hex');
  return { traceId, parentId, traceparent: `00-${traceId}-${parentId}-01` };
}

async function query(base: string, traceparent: string): Promise<void> {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent },
    body: JSON.stringify({ query: 'query Traced { afterSaleServices(pageSize: 2) { items { id content } } }' }),
    signal: AbortSignal.timeout(15_000),
  });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { errors?: unknown }).errors).toBeUndefined();
}

async function exported(match: (e: Export) => boolean, what: string): Promise<Export> {
  const give = Date.now() + 10_000;
  for (;;) {
    const found = received.find(match);
    if (found) return found;
    if (Date.now() > give) throw new Error(`never exported: ${what} (${received.length} received: ${received.map((e) => `${e.path} ${e.contentType}`).join(', ')})`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** OTLP JSON as the exporter writes it (ids in hex). */
interface OtlpJson {
  resourceSpans: Array<{
    resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
    scopeSpans: Array<{ scope: { name: string }; spans: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; attributes: Array<{ key: string }> }> }>;
  }>;
}

describe('OTEL_* variables start the exporter of the shipped entry point', () => {
  it('OTEL_TRACES_EXPORTER=otlp, http/json: the operation and its ERP calls arrive under the caller trace', async () => {
    const child = await startSubgraph({
      ZB_LOG_LEVEL: 'info',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'zb-otel-json',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
    try {
      const from = caller();
      await query(child.base, from.traceparent);
      const operationExported = (e: Export) => e.body.includes(from.traceId) && e.body.includes('query Traced');
      const message = await exported(operationExported, 'the operation span');
      expect(message.path).toBe('/v1/traces');
      expect(message.contentType).toContain('application/json');
      const body = JSON.parse(message.body.toString('utf8')) as OtlpJson;
      const resource = body.resourceSpans[0]!.resource.attributes;
      expect(resource.find((a) => a.key === 'service.name')?.value.stringValue).toBe('zb-otel-json');
      // The ERP spans may come in this batch or another one.
      const spans = received
        .filter((e) => e.contentType.includes('json'))
        .flatMap((e) => (JSON.parse(e.body.toString('utf8')) as OtlpJson).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)))
        .filter((s) => s.traceId === from.traceId);
      const op = spans.find((s) => s.name === 'query Traced')!;
      expect(op.parentSpanId).toBe(from.parentId);
      const list = spans.find((s) => s.name === 'erp list');
      expect(list?.parentSpanId).toBe(op.spanId);
      expect(output(child.output()).some((l) => l.msg === 'tracing on: exporting spans' && l.protocol === 'http/json')).toBe(true);
    } finally {
      await child.stop();
    }
  }, 60_000);

  it('OTEL_EXPORTER_OTLP_ENDPOINT alone (http/protobuf, the default): the last spans are flushed on SIGTERM', async () => {
    const child = await startSubgraph({
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_SERVICE_NAME: 'zb-otel-proto',
      // Nothing is exported on a schedule within the test: only the shutdown flush can deliver the spans.
      OTEL_BSP_SCHEDULE_DELAY: '600000',
    });
    const from = caller();
    try {
      await query(child.base, from.traceparent);
    } finally {
      await child.stop();
    }
    const traceIdBytes = Buffer.from(from.traceId, 'hex');
    const message = await exported((e) => e.body.includes(traceIdBytes), 'the spans, at shutdown');
    expect(message.path).toBe('/v1/traces');
    expect(message.contentType).toBe('application/x-protobuf');
    expect(message.body.includes(Buffer.from('zb-otel-proto'))).toBe(true);
    expect(message.body.includes(Buffer.from('query Traced'))).toBe(true);
  }, 60_000);
});

describe('no OTEL_* variables: no SDK', () => {
  /** Loads the built app and runs the tracing switch under `env`, then reports whether any SDK module was loaded. */
  function probe(env: ChildEnv): { on: boolean; sdkModules: number } {
    const script = `
      const pino = require('pino');
      require('./dist/server/app');
      const tracing = require('./dist/server/tracing').startTracing(process.env, pino({ level: 'silent' }));
      const sdkModules = Object.keys(require.cache).filter((k) => /@opentelemetry[\\\\/]sdk-/.test(k)).length;
      process.stdout.write(JSON.stringify({ on: tracing !== undefined, sdkModules }));
      process.exit(0);`;
    const full = Object.fromEntries(Object.entries({ PATH: process.env.PATH, ...env }).filter((e): e is [string, string] => e[1] !== undefined));
    return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: ROOT, env: full, timeout: 30_000 }).toString('utf8')) as { on: boolean; sdkModules: number };
  }

  it.each<[string, ChildEnv, boolean]>([
    ['nothing set', {}, false],
    ['OTEL_SERVICE_NAME alone', { OTEL_SERVICE_NAME: 'x' }, false],
    ['OTEL_TRACES_EXPORTER=none', { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }, false],
    ['OTEL_SDK_DISABLED=true', { OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }, false],
    ['an OTLP endpoint', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }, true],
    ['OTEL_TRACES_EXPORTER=console', { OTEL_TRACES_EXPORTER: 'console' }, true],
  ])('%s', (_name, env, on) => {
    const result = probe(env);
    expect(result.on).toBe(on);
    if (on) expect(result.sdkModules).toBeGreaterThan(0);
    else expect(result.sdkModules).toBe(0);
  });
});

function output(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
