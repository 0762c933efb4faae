import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One message the subgraph POSTed to a callback URL, as the router received it. */
export interface CallbackMessage {
  kind: string;
  action: string;
  id: string;
  verifier: string;
  payload?: { data?: unknown; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
  /** The `subscription-protocol` header. */
  protocol: string | undefined;
  at: number;
}

/**
 * A fake Apollo Router for the HTTP callback protocol: a real local HTTP server that records every `check`, `next`
 * and `complete` a subgraph POSTs to `callbackUrl(id)` and answers as the router does (apollo-router
 * plugins/subscription/callback.rs): 204 to a check, 200 to a next, 202 to a complete, 404 once it has forgotten a
 * subscription (`forgotten`). `hung` subscriptions get no answer to their `next` (a router that hangs).
 */
export class FakeRouter {
  readonly messages: CallbackMessage[] = [];
  /** Everything received, for assertions on what must never be sent. */
  raw = '';
  /** Subscriptions the router no longer knows: it answers 404. */
  readonly forgotten = new Set<string>();
  /** Subscriptions whose `next` the router never answers (a hung router). */
  readonly hung = new Set<string>();
  private readonly held: ServerResponse[] = [];
  private readonly server = http.createServer((req, res) => void this.receive(req, res));
  url = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/callback`;
    return this;
  }

  callbackUrl(id: string): string {
    return `${this.url}/${id}`;
  }

  of(id: string, action?: string): CallbackMessage[] {
    return this.messages.filter((m) => m.id === id && (action === undefined || m.action === action));
  }

  async close(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    this.raw += text;
    const body = JSON.parse(text) as Omit<CallbackMessage, 'protocol' | 'at'>;
    const protocol = req.headers['subscription-protocol'];
    this.messages.push({ ...body, protocol: typeof protocol === 'string' ? protocol : undefined, at: Date.now() });
    if (this.forgotten.has(body.id)) {
      res.writeHead(404, { 'content-type': 'application/json', 'subscription-protocol': 'callback/1.0' });
      res.end(JSON.stringify({ errors: [{ message: "subscription doesn't exist", extensions: { code: '404' } }] }));
      return;
    }
    if (body.action === 'next' && this.hung.has(body.id)) {
      this.held.push(res);
      return;
    }
    if (body.action === 'check') {
      res.writeHead(204, { 'subscription-protocol': 'callback/1.0' });
      res.end();
    } else if (body.action === 'complete') {
      res.writeHead(202);
      res.end();
    } else {
      res.writeHead(200);
      res.end();
    }
  }
}
