import type { ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginInlineTrace } from '@apollo/server/plugin/inlineTrace';

/** The header a federation gateway sends when it wants the subgraph's trace of the operation (`ftv1`). */
export const INLINE_TRACE_HEADER = 'apollo-federation-include-trace';

// One resolved promise for every request that asks for nothing: Apollo awaits each plugin's requestDidStart.
const NOTHING: Promise<void> = Promise.resolve();

/**
 * Apollo's inline trace (the `ftv1` response extension a federation gateway asks for with
 * `apollo-federation-include-trace: ftv1` when it reports usage to GraphOS), for the requests that ask and no
 * others. Apollo Server installs its own ApolloServerPluginInlineTrace on a subgraph schema, and that one builds a trace
 * tree builder (a protobuf Trace, a root node, a Map) for every request before it looks at the header; the server
 * installs ApolloServerPluginInlineTraceDisabled instead (app.ts) and this one in its place. A request that asks gets
 * Apollo's own plugin, unchanged (errors masked, as by default).
 */
export function inlineTraceWhenAsked(): ApolloServerPlugin {
  const inline = ApolloServerPluginInlineTrace();
  return {
    requestDidStart(requestContext) {
      if (requestContext.request.http?.headers.get(INLINE_TRACE_HEADER) !== 'ftv1') return NOTHING;
      return inline.requestDidStart!(requestContext);
    },
  };
}
