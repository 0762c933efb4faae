import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';

/**
 * `@graphql-hive/gateway-runtime`, loaded without its type declarations. Its typings pull `lib.dom` (through
 * `@whatwg-node/fetch`) and graphql-yoga's augmentation of `GraphQLErrorExtensions` (`http.headers` as a record) into
 * the whole compilation, which then rejects Apollo's `HeaderMap` in our errors and Node's `fetch` bodies in src/.
 * So the tests see only the part of its API they use, typed here; the test run checks it against the real thing.
 */
export interface HiveGatewayConfig {
  /** A supergraph SDL (Apollo Federation), as `@apollo/composition` makes it. */
  supergraph: string;
  logging?: boolean;
  transportEntries?: Record<string, { options?: { subscriptions?: { kind: string; location?: string; options?: Record<string, unknown> } } }>;
  propagateHeaders?: { fromClientToSubgraphs?: (payload: { request: Request }) => Record<string, string | null | undefined> };
}

/** The runtime is a node request listener (a whatwg-node server adapter) that must be disposed. */
export interface HiveGateway {
  (req: IncomingMessage, res: ServerResponse): void;
  dispose(): Promise<void> | void;
}

const load = createRequire(__filename);

export function createGatewayRuntime(config: HiveGatewayConfig): HiveGateway {
  const runtime = load('@graphql-hive/gateway-runtime') as { createGatewayRuntime(config: HiveGatewayConfig): HiveGateway };
  return runtime.createGatewayRuntime(config);
}
