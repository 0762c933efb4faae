import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import JSON5 from 'json5';
import { CallLog, type CallRecord, type Endpoint } from './call-log';
import { createDataset, type DatasetOptions } from './dataset';
import { FaultInjector, type FaultKind, type FaultSettings, type ScriptedFault } from './faults';
import { readDatas, type Datas } from './handlers/datas';
import { handleDetail } from './handlers/detail';
import { handleList } from './handlers/list';
import { LoginHandler } from './handlers/login';
import { handleProcess } from './handlers/process';
import { failure, htmlPage, STATUS_TEXT, type Reply } from './protocol';
import { Semaphore } from './semaphore';
import { SessionStore } from './sessions';
import { DEFAULT_SIMULATOR_PASSWORD, DEFAULT_SIMULATOR_USER, defaultUsers, type SimUser } from './users';
import { World } from './world';

/**
 * The simulated ERP's HTTP side: the pages of ERP-PROTOCOL.md (login, list, detail, save), its faults, holds and admin
 * routes. Over 200 lines because it is the one place where a request meets the fault injector, the session store and the
 * call log, in the order a real IIS would apply them; the pages themselves live in handlers/.
 */
export interface SimulatorOptions {
  port?: number;
  host?: string;
  user?: string;
  password?: string;
  dataset?: DatasetOptions;
  /** Inactivity timeout of ERP sessions, ms (0 = never). */
  sessionTimeoutMs?: number;
  kickOtherDevices?: boolean;
  /** A new login of an account ends all its older sessions, whatever their serialnum (default false). */
  kickOlderSessions?: boolean;
  /** What chuli.asp answers on success (the real text is unknown, so it is a setting on both sides). */
  saveSuccessText?: string;
  rowsAsObjects?: boolean;
  faults?: Partial<FaultSettings>;
  /** Serve `/__sim/*` (call log, faults) over HTTP, for tools that run the simulator as a separate process. */
  adminApi?: boolean;
}

export interface Simulator {
  readonly url: string;
  readonly port: number;
  readonly calls: CallLog;
  readonly faults: FaultInjector;
  readonly sessions: SessionStore;
  readonly world: World;
  readonly users: SimUser[];
  /** Moves the simulator's clock (session inactivity) forward without waiting. */
  advanceClock(ms: number): void;
  close(): Promise<void>;
}

const SERVICE_BASE = '/sysa/mobilephone/salesmanage/service/';
const LOGIN_PATHS = new Set(['/webapi/v3/ov1/login', '/sysa/mobilephone/login.asp']);
const MAX_BODY = 2 * 1024 * 1024;

function endpointOf(path: string): Endpoint {
  if (LOGIN_PATHS.has(path)) return 'login';
  if (path === `${SERVICE_BASE}list.asp`) return 'list';
  if (path === `${SERVICE_BASE}add.asp`) return 'detail';
  if (path === `${SERVICE_BASE}chuli.asp`) return 'process';
  return 'unknown';
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The ERP answers JSON under a `text/html` content type: clients must not trust the header. */
function sendReply(res: ServerResponse, reply: Reply): void {
  send(res, 200, 'text/html; charset=utf-8', JSON.stringify(reply));
}

function isJsonLike(contentType: string): boolean {
  const t = contentType.split(';')[0]!.trim().toLowerCase();
  return t === '' || t === 'application/zsml' || t === 'application/json' || t === 'text/plain';
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  let clockOffset = 0;
  const now = () => Date.now() + clockOffset;
  const users = defaultUsers(options.user ?? DEFAULT_SIMULATOR_USER, options.password ?? DEFAULT_SIMULATOR_PASSWORD);
  const sessions = new SessionStore({ timeoutMs: options.sessionTimeoutMs ?? 20 * 60000, kickOtherDevices: options.kickOtherDevices ?? true, kickOlderSessions: options.kickOlderSessions ?? false }, now);
  const world = new World(createDataset(options.dataset));
  const calls = new CallLog();
  const faults = new FaultInjector();
  if (options.faults) faults.configure(options.faults);
  const pool = new Semaphore(() => faults.current.maxConcurrent);
  const login = new LoginHandler(users, sessions);
  const sockets = new Set<Socket>();
  const saveSuccessText = options.saveSuccessText ?? '保存成功！';

  function dispatch(record: CallRecord, endpoint: Endpoint, cmdkey: string, datas: Datas, session: string, fault: FaultKind | undefined): Reply {
    if (endpoint === 'login') return login.handle(datas);
    const check = sessions.check(session);
    if (!check.ok) return failure(check.status, check.message);
    const user = check.user;
    switch (endpoint) {
      case 'list':
        return handleList(cmdkey, datas, user, session, world, { rowsAsObjects: options.rowsAsObjects ?? false });
      case 'detail':
        return handleDetail(datas, user, session, world);
      case 'process':
        return handleProcess(cmdkey, datas, user, session, world, {
          successText: saveSuccessText,
          silent: fault === 'silentSave',
          stored: () => {
            record.stored = true;
          },
        });
      case 'unknown':
        throw new Error('unreachable: unknown endpoints are answered before dispatch');
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The time each ERP request takes, from its arrival to its reply: what a client sees as the ERP's latency.
    const arrived = performance.now();
    const url = new URL(req.url ?? '/', 'http://sim');
    const path = url.pathname.toLowerCase();
    if (options.adminApi && path.startsWith('/__sim/')) return admin(req, res, path);
    res.once('close', () => calls.servedFor(performance.now() - arrived));
    const endpoint = endpointOf(path);
    if (endpoint === 'unknown') {
      send(res, 404, 'text/plain; charset=utf-8', 'The resource cannot be found. (404)');
      return;
    }
    if (url.searchParams.get('apihelp') === '1') {
      send(res, 200, 'text/html; charset=utf-8', htmlPage('API 帮助', `${path} 接口说明`));
      return;
    }
    const contentType = String(req.headers['content-type'] ?? '');
    if (req.method !== 'POST' || !isJsonLike(contentType)) {
      // A browser-style request gets the page's HTML, not the JSON API.
      send(res, 200, 'text/html; charset=utf-8', htmlPage('智邦国际', '请使用移动端接口访问。'));
      return;
    }
    const text = await readBody(req);
    let envelope: { session?: unknown; cmdkey?: unknown; datas?: unknown };
    try {
      // The ASP page evaluates the body as a JavaScript literal: unquoted keys and single quotes pass.
      const parsed: unknown = JSON5.parse(text);
      envelope = parsed !== null && typeof parsed === 'object' ? (parsed as typeof envelope) : {};
    } catch {
      calls.record({ endpoint, path, cmdkey: '', datas: {}, session: '', contentType });
      sendReply(res, failure('11', `${STATUS_TEXT.scriptError}缺少对象`));
      return;
    }
    const cmdkey = String(envelope.cmdkey ?? url.searchParams.get('__msgId') ?? '');
    const datas = readDatas(envelope.datas);
    const session = typeof envelope.session === 'string' ? envelope.session : '';
    const drawn = faults.draw(endpoint);
    const record = calls.record({ endpoint, path, cmdkey, datas: Object.fromEntries(datas), session, contentType, ...(drawn ? { fault: drawn.kind } : {}) });

    await pool.acquire();
    calls.enter(endpoint);
    try {
      const latency = faults.current.latencyMs + (drawn?.delayMs ?? 0);
      if (drawn?.kind === 'hold') {
        // Executed now, answered later: a save that lands while the reply is held is not in it.
        const reply = dispatch(record, endpoint, cmdkey, datas, session, undefined);
        drawn.gate?.caught();
        // A client that gives up meanwhile frees the worker, as with `stall`.
        let onClose: () => void = () => undefined;
        const gone = new Promise<void>((resolve) => {
          onClose = () => resolve();
          req.socket.once('close', onClose);
        });
        try {
          await Promise.race([Promise.all([latency > 0 ? delay(latency) : undefined, drawn.gate?.released]), gone]);
        } finally {
          req.socket.off('close', onClose);
        }
        if (!req.socket.destroyed) sendReply(res, reply);
        return;
      }
      if (latency > 0) await delay(latency);
      switch (drawn?.kind) {
        case 'drop':
          req.socket.destroy();
          return;
        case 'stall':
          // Hold the request until the client gives up (or the simulator closes).
          await new Promise<void>((resolve) => req.socket.once('close', () => resolve()));
          return;
        case 'html':
          send(res, 200, 'text/html; charset=utf-8', htmlPage('服务器组件错误', 'ActiveX 部件不能创建对象: \'ZSMLLibrary.Component\''));
          return;
        case 'http500':
          send(res, 500, 'text/html; charset=utf-8', htmlPage('500 - 内部服务器错误。', '您查找的资源存在问题，因而无法显示。'));
          return;
        case 'status11':
          sendReply(res, failure('11', `${STATUS_TEXT.scriptError}Microsoft OLE DB Provider for SQL Server 错误 '80004005'`));
          return;
        case 'session10':
          if (endpoint !== 'login') sessions.revoke(session, 10);
          break;
        case 'badJson': {
          const full = JSON.stringify(dispatch(record, endpoint, cmdkey, datas, session, undefined));
          send(res, 200, 'text/html; charset=utf-8', full.slice(0, Math.max(1, Math.floor(full.length / 2))));
          return;
        }
        case 'dropAfterProcess':
          dispatch(record, endpoint, cmdkey, datas, session, undefined);
          req.socket.destroy();
          return;
        case 'silentSave':
        case undefined:
          break;
      }
      sendReply(res, dispatch(record, endpoint, cmdkey, datas, session, drawn?.kind));
    } finally {
      calls.leave(endpoint);
      pool.release();
    }
  }

  async function admin(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const json = (status: number, body: unknown) => send(res, status, 'application/json', JSON.stringify(body));
    if (path === '/__sim/calls' && req.method === 'GET') return json(200, { calls: calls.all(), peak: calls.peak() });
    if (path === '/__sim/calls' && req.method === 'DELETE') {
      calls.clear();
      return json(200, { ok: true });
    }
    if (path === '/__sim/faults' && req.method === 'PUT') {
      const body = JSON.parse(await readBody(req)) as Partial<FaultSettings> & { inject?: ScriptedFault[] };
      const { inject, ...settings } = body;
      faults.configure(settings);
      for (const f of inject ?? []) faults.inject(f);
      return json(200, faults.current);
    }
    if (path === '/__sim/faults' && req.method === 'DELETE') {
      faults.reset();
      return json(200, faults.current);
    }
    if (path === '/__sim/holds/release' && req.method === 'POST') {
      faults.releaseHolds();
      return json(200, { ok: true });
    }
    if (path === '/__sim/sessions/expire' && req.method === 'POST') {
      sessions.expireAll();
      return json(200, { ok: true });
    }
    return json(404, { error: 'unknown admin route' });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A crash inside a page becomes the ERP's own script-error reply, as on IIS.
      if (!res.headersSent) sendReply(res, failure('11', `${STATUS_TEXT.scriptError}${err instanceof Error ? err.message : String(err)}`));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host ?? '127.0.0.1';

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    calls,
    faults,
    sessions,
    world,
    users,
    advanceClock: (ms: number) => {
      clockOffset += ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        faults.releaseHolds();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
