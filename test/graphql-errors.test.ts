import { ApolloServer } from '@apollo/server';
import { GraphQLError } from 'graphql';
import { IdempotencyConflictError, IdempotencyKeyInUseError, IdempotencyStoreFullError } from '../src/domain/idempotency';
import { InputError } from '../src/domain/input';
import { ErpError, ErpErrorCode } from '../src/erp/errors';
import type { GraphQLContext } from '../src/graphql/context';
import { classifyError } from '../src/graphql/errors';
import { formatError } from '../src/server/errors';
import { createLogger } from '../src/server/logger';
import { createMetrics } from '../src/server/metrics';
import { requestLogPlugin } from '../src/server/plugins';
import { LogCapture } from './helpers';

/** One classifier from any thrown value to what a client sees; formatError and the request log both use it. */

const ERP_TEXT = "Microsoft OLE DB Provider for SQL Server: Incorrect syntax near 'tousu'";

/** Any ERP failure, by code; the ERP's own text as its message. */
function erpError(code: ErpErrorCode, retryable = false): ErpError {
  class AnyErpError extends ErpError {
    readonly code = code;
    readonly retryable = retryable;
    readonly mayHaveReachedErp = false;
  }
  return new AnyErpError(ERP_TEXT);
}

/** The public contract per ERP code (README: every GraphQL error carries `extensions.code`). */
const PUBLIC: Record<ErpErrorCode, string> = {
  ERP_CONNECT: 'UPSTREAM_UNAVAILABLE',
  ERP_SOCKET: 'UPSTREAM_UNAVAILABLE',
  ERP_CIRCUIT_OPEN: 'UPSTREAM_UNAVAILABLE',
  ERP_CLIENT_CLOSED: 'UPSTREAM_UNAVAILABLE',
  ERP_HTTP_STATUS: 'UPSTREAM_BAD_RESPONSE',
  ERP_BAD_RESPONSE: 'UPSTREAM_BAD_RESPONSE',
  ERP_TIMEOUT: 'UPSTREAM_TIMEOUT',
  ERP_ABORTED: 'UPSTREAM_TIMEOUT',
  ERP_SESSION: 'UNAUTHENTICATED',
  ERP_AUTH: 'UNAUTHENTICATED',
  ERP_SCRIPT_ERROR: 'UPSTREAM_ERROR',
  ERP_STATUS: 'UPSTREAM_ERROR',
  ERP_REJECTED: 'FORBIDDEN',
  ERP_BUSY: 'UPSTREAM_BUSY',
};

describe('classifyError', () => {
  it.each(Object.values(ErpErrorCode))('%s: its public code and a fixed message, never the ERP text', (code) => {
    const c = classifyError(erpError(code));
    expect(c).toEqual({ code: PUBLIC[code], message: expect.any(String), extensions: { erpCode: code }, expected: true });
    expect(c.message).not.toContain('OLE DB');
  });

  it('an HTTP status the ERP may answer differently next time is UPSTREAM_UNAVAILABLE', () => {
    expect(classifyError(erpError(ErpErrorCode.HttpStatus, true)).code).toBe('UPSTREAM_UNAVAILABLE');
  });

  it('domain input errors are BAD_USER_INPUT on their field; busy idempotency keys are retryable', () => {
    expect(classifyError(new InputError('pageSize', 'pageSize must be between 1 and 100'))).toEqual({
      code: 'BAD_USER_INPUT', message: 'pageSize must be between 1 and 100', extensions: { field: 'pageSize' }, expected: true,
    });
    expect(classifyError(new IdempotencyConflictError())).toEqual(expect.objectContaining({ code: 'BAD_USER_INPUT', extensions: { field: 'idempotencyKey' } }));
    expect(classifyError(new IdempotencyKeyInUseError())).toEqual(expect.objectContaining({ code: 'IDEMPOTENCY_KEY_IN_USE', extensions: { retryable: true } }));
    expect(classifyError(new IdempotencyStoreFullError(3))).toEqual(expect.objectContaining({ code: 'IDEMPOTENCY_STORE_FULL', extensions: { retryable: true } }));
  });

  it('a GraphQLError with a public code passes as it is (without its HTTP head); an unknown code or value is unexpected', () => {
    const cost = new GraphQLError('too expensive', { extensions: { code: 'COST_ESTIMATED_TOO_EXPENSIVE', cost: { limit: 1 }, http: { status: 400 } } });
    expect(classifyError(cost)).toEqual({ code: 'COST_ESTIMATED_TOO_EXPENSIVE', message: 'too expensive', extensions: { cost: { limit: 1 } }, expected: true });
    for (const value of [new GraphQLError('x', { extensions: { code: 'SOMETHING_ELSE' } }), new TypeError('x is undefined'), 'a string', undefined]) {
      expect(classifyError(value)).toEqual({ code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error', extensions: {}, expected: false });
    }
  });

  it('a GraphQLError with no code is judged by the error it wraps', () => {
    expect(classifyError(new GraphQLError('wrapped', { originalError: erpError(ErpErrorCode.Busy) })).code).toBe('UPSTREAM_BUSY');
  });
});

describe('a resolver throws and never wraps', () => {
  const capture = new LogCapture();
  const server = new ApolloServer<GraphQLContext>({
    typeDefs: 'type Query { outage: String, refused: String, bug: String }',
    resolvers: {
      Query: {
        outage: () => Promise.reject(erpError(ErpErrorCode.Connect)),
        refused: () => {
          throw new InputError('id', "'x' is not an ERP id (a positive integer)");
        },
        bug: () => {
          throw new TypeError('cannot read properties of undefined');
        },
      },
    },
    formatError,
    plugins: [requestLogPlugin(createLogger('debug', capture), createMetrics())],
  });
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  async function run(query: string) {
    const before = capture.lines.length;
    const response = await server.executeOperation({ query }, { contextValue: { requestId: 'req-1' } as GraphQLContext });
    if (response.body.kind !== 'single') throw new Error('expected a single result');
    return { errors: response.body.singleResult.errors ?? [], log: capture.lines.slice(before).join('\n') };
  }

  it('an ERP outage is UPSTREAM_UNAVAILABLE with the fixed message, not logged as unexpected', async () => {
    const { errors, log } = await run('{ outage }');
    expect(errors).toEqual([expect.objectContaining({ message: 'The ERP cannot be reached.', path: ['outage'], extensions: { code: 'UPSTREAM_UNAVAILABLE', erpCode: 'ERP_CONNECT' } })]);
    expect(JSON.stringify(errors)).not.toContain('OLE DB');
    expect(log).not.toContain('unexpected error');
    expect(log).toContain('"errorCodes":["UPSTREAM_UNAVAILABLE"]');
  });

  it('a domain input error is BAD_USER_INPUT on its field', async () => {
    const { errors, log } = await run('{ refused }');
    expect(errors[0]!.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'id' });
    expect(log).not.toContain('unexpected error');
  });

  it('a bug is masked as INTERNAL_SERVER_ERROR and logged in full as unexpected, with the request id', async () => {
    const { errors, log } = await run('{ bug }');
    expect(errors).toEqual([{ message: 'Internal server error', locations: expect.any(Array), path: ['bug'], extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
    expect(log).toContain('unexpected error');
    expect(log).toContain('cannot read properties of undefined');
    expect(log).toContain('req-1');
  });
});
