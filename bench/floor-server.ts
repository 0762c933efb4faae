import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool } from 'undici';

/**
 * The bare-undici floor of `npm run bench`, as a process of its own so that its CPU and memory are read the same way
 * as the subgraph's: HTTP in, the same ERP calls, JSON out, and nothing else (no GraphQL, no layers, no mapping beyond
 * picking the fields a workload asks for). Workload A is one list.asp call; B is that list plus one add.asp call per
 * row, `FLOOR_DETAIL_CONCURRENCY` at a time (a sliding window, like the product's per-request slots), over one undici
 * pool of `FLOOR_SOCKETS` keep-alive sockets. What the subgraph spends above this is the cost of being a subgraph.
 *
 * Request: `POST` any path, body `{"workload": "A" | "B", "page": n}`. `GET /health/ready` answers 200. Transpiled
 * and started by bench/subgraph-process.ts (plain node, `npm start`'s flags); configured by its environment:
 * FLOOR_ERP_URL, FLOOR_SESSION (an ERP session token the bench opened), FLOOR_SOCKETS, FLOOR_DETAIL_CONCURRENCY, PORT;
 * FLOOR_BURN_MS (0) spins the CPU that long per ERP reply read, to show what a client's CPU per call does to how full
 * it keeps its sockets (bench/capacity.ts).
 */
const SERVICE = '/sysa/mobilephone/salesmanage/service/';
const PAGE_SIZE = '20';
// The list columns of workload A, and the detail fields of workload B (the ids of src/domain/field-map.ts's defaults).
const LIST_COLUMNS = { id: 'ord', code: 'shid', title: 'title', customerName: 'khmc', acceptedAt: 'date1', urgency: 'great1' } as const;
const DETAIL_FIELDS = { title: 'title', content: 'introts', handlingContent: 'introN', remark: 'introb' } as const;
const DETAIL_NAME_OF = new Map<string, string>(Object.entries(DETAIL_FIELDS).map(([name, field]) => [field, name]));

interface Envelope {
  header: { status: number | string };
  body?: {
    source?: { table: { cols: Array<{ id: string }>; rows: string[][] } };
    bill?: { groups: Array<{ fields: Array<{ id: string; text: string }> }> };
  };
}

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const erp = new URL(env('FLOOR_ERP_URL'));
const session = env('FLOOR_SESSION');
const detailConcurrency = Number(env('FLOOR_DETAIL_CONCURRENCY'));
const pool = new Pool(erp.origin, { connections: Number(env('FLOOR_SOCKETS')), pipelining: 1 });
const basePath = erp.pathname.replace(/\/+$/, '');
const burnMs = Number(process.env.FLOOR_BURN_MS ?? 0);

function burn(): void {
  const until = performance.now() + burnMs;
  while (performance.now() < until) {
    // spinning on purpose: CPU per reply, as a heavier client would spend it
  }
}

async function call(page: string, cmdkey: string, datas: Array<{ id: string; val: string }>): Promise<NonNullable<Envelope['body']>> {
  const res = await pool.request({
    method: 'POST',
    path: basePath + SERVICE + page,
    headers: { 'content-type': 'application/zsml; charset=utf-8' },
    body: JSON.stringify({ session, cmdkey, datas }),
  });
  const reply = JSON.parse(await res.body.text()) as Envelope;
  if (burnMs > 0) burn();
  if (res.statusCode !== 200 || String(reply.header.status) !== '0' || !reply.body) throw new Error(`ERP ${page}: HTTP ${res.statusCode}, status ${String(reply.header.status)}`);
  return reply.body;
}

async function list(page: number): Promise<Array<Record<keyof typeof LIST_COLUMNS, string>>> {
  const body = await call('list.asp', 'refresh', [
    { id: 'pagesize', val: PAGE_SIZE },
    { id: 'pageindex', val: String(page) },
  ]);
  const table = body.source?.table;
  if (!table) return [];
  const at = (id: string) => table.cols.findIndex((c) => c.id === id);
  const columns = Object.entries(LIST_COLUMNS).map(([name, id]) => [name, at(id)] as const);
  return table.rows.map((row) => Object.fromEntries(columns.map(([name, i]) => [name, row[i] ?? ''])) as Record<keyof typeof LIST_COLUMNS, string>);
}

async function detail(id: string): Promise<Record<string, string>> {
  const body = await call('add.asp', '', [{ id: 'ord', val: id }]);
  const out: Record<string, string> = { id };
  for (const group of body.bill?.groups ?? []) {
    for (const field of group.fields) {
      const name = DETAIL_NAME_OF.get(field.id);
      if (name) out[name] = field.text;
    }
  }
  return out;
}

/** Every id's detail, `detailConcurrency` calls in flight at a time (a new one starts as soon as one ends). */
async function details(ids: string[]): Promise<Array<Record<string, string>>> {
  const out: Array<Record<string, string>> = new Array<Record<string, string>>(ids.length);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      out[i] = await detail(ids[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(detailConcurrency, ids.length) }, worker));
  return out;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method === 'GET') {
    res.writeHead(req.url === '/health/ready' || req.url === '/health/live' ? 200 : 404).end();
    return;
  }
  const input = JSON.parse(await readBody(req)) as { workload: 'A' | 'B'; page: number };
  const rows = await list(input.page);
  const items = input.workload === 'A' ? rows : await details(rows.map((r) => r.id));
  const text = JSON.stringify({ data: { afterSaleServices: { items } } });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

const server = http.createServer((req, res) => {
  answer(req, res).catch((e: unknown) => {
    const text = JSON.stringify({ errors: [{ message: e instanceof Error ? e.message : String(e) }] });
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' }).end(text);
    else res.destroy();
  });
});
server.keepAliveTimeout = 5000;
server.listen(Number(env('PORT')), '127.0.0.1');
const stop = () => {
  server.close();
  void pool.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
// Started by the bench over an IPC channel: when the bench is gone (killed, timed out), so is the floor.
process.once('disconnect', stop);
