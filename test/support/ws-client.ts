import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/**
 * A graphql-ws client as a gateway or a browser runs one (`createClient` over the `ws` package), against the app's
 * /graphql; what each subscription receives is collected for assertions. No retries: a test sees every close.
 */
export interface WsOptions {
  /** Headers of the WebSocket upgrade request (a gateway forwarding x-zb-session). */
  headers?: Record<string, string>;
  /** The `connection_init` payload (a browser's `connectionParams`). */
  connectionParams?: Record<string, unknown>;
  /**
   * Keep the socket open after the last subscription completes (graphql-ws's lazy client otherwise closes it at once
   * with 1000, racing a server that is about to close it with a code of its own).
   */
  keepOpen?: boolean;
}

export interface Received<T> {
  /** `next` payloads with data. */
  data: T[];
  /** GraphQL errors: from `next` payloads and from the `error` message. */
  errors: Array<{ message: string; extensions?: Record<string, unknown> }>;
  completed: boolean;
  /** A socket-level failure (close event) the subscription ended with. */
  failure?: unknown;
  /** Stops the subscription (the client sends `complete`). */
  stop(): void;
}

export interface TestWsClient {
  client: Client;
  /** Close codes the client saw, in order. */
  closes: Array<{ code: number; reason: string }>;
  connected: () => boolean;
  subscribe<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Received<T>;
  dispose(): Promise<void>;
}

export function wsUrl(httpUrl: string): string {
  return httpUrl.replace(/^http/, 'ws');
}

export function wsClient(httpUrl: string, options: WsOptions = {}): TestWsClient {
  const headers = options.headers ?? {};
  // The upgrade request's headers are given by the socket implementation.
  class HeaderedWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers });
    }
  }
  const closes: Array<{ code: number; reason: string }> = [];
  let open = false;
  const client = createClient({
    url: wsUrl(httpUrl),
    webSocketImpl: HeaderedWebSocket,
    ...(options.connectionParams ? { connectionParams: options.connectionParams } : {}),
    retryAttempts: 0,
    // keepOpen: connected at once and kept until the server or dispose() closes it; its close is recorded below.
    ...(options.keepOpen ? { lazy: false, onNonLazyError: () => undefined } : { lazy: true }),
    on: {
      connected: () => {
        open = true;
      },
      closed: (event) => {
        open = false;
        const e = event as { code?: number; reason?: string };
        closes.push({ code: e.code ?? 0, reason: String(e.reason ?? '') });
      },
    },
  });
  return {
    client,
    closes,
    connected: () => open,
    subscribe<T>(query: string, variables?: Record<string, unknown>): Received<T> {
      const received: Received<T> = { data: [], errors: [], completed: false, stop: () => undefined };
      received.stop = client.subscribe<T>(
        { query, ...(variables ? { variables } : {}) },
        {
          next: (value) => {
            if (value.data) received.data.push(value.data as T);
            if (value.errors) received.errors.push(...(value.errors as Received<T>['errors']));
          },
          error: (error) => {
            if (Array.isArray(error)) received.errors.push(...(error as Received<T>['errors']));
            else received.failure = error;
          },
          complete: () => {
            received.completed = true;
          },
        },
      );
      return received;
    },
    dispose: async () => {
      await client.dispose();
    },
  };
}
