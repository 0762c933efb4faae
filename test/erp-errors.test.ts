import {
  ErpAbortedError,
  ErpBusyError,
  ErpCircuitOpenError,
  ErpClosedError,
  ErpConnectError,
  ErpErrorCode,
  ErpHttpStatusError,
  ErpRejectedError,
  ErpScriptError,
  ErpSocketError,
  type AbortPhase,
} from '../src/erp/errors';
import { UnreachableCaseError } from '../src/erp/unreachable';

/** Each failure is one class with a stable code and a default message; the path is passed in, never patched on. */
describe('default messages and the path, undici style', () => {
  it.each([
    [new ErpClosedError({ path: '/p' }), 'ERP_CLIENT_CLOSED', 'ERP client is closed: call not sent'],
    [new ErpCircuitOpenError({ path: '/p' }), 'ERP_CIRCUIT_OPEN', 'ERP circuit breaker is open: failing fast'],
    [new ErpBusyError({ path: '/p' }), 'ERP_BUSY', 'no ERP call slot free in time'],
    [new ErpConnectError({ path: '/p' }), 'ERP_CONNECT', 'cannot connect to the ERP'],
    [new ErpSocketError({ path: '/p' }), 'ERP_SOCKET', 'ERP connection failed'],
    [new ErpScriptError({ path: '/p' }), 'ERP_SCRIPT_ERROR', 'ERP script error'],
    [new ErpRejectedError({ path: '/p' }), 'ERP_REJECTED', 'ERP refused the request'],
    [new ErpHttpStatusError(502, { path: '/p' }), 'ERP_HTTP_STATUS', 'ERP answered HTTP 502'],
  ])('%p', (error, code, message) => {
    expect(error).toEqual(expect.objectContaining({ code, message, path: '/p', name: error.constructor.name }));
  });

  it('a message of its own, a cause, or nothing at all', () => {
    const cause = new Error('ECONNREFUSED');
    const e = new ErpConnectError('cannot connect to the ERP (ECONNREFUSED)', { path: '/p', cause });
    expect(e).toEqual(expect.objectContaining({ message: 'cannot connect to the ERP (ECONNREFUSED)', path: '/p', cause }));
    expect(new ErpConnectError().path).toBe('');
    expect('cause' in new ErpConnectError()).toBe(false);
  });
});

describe('ErpAbortedError: one constructor, the message by phase', () => {
  it.each<[AbortPhase, string, boolean]>([
    ['unsent', 'ERP call abandoned by its caller before it was sent', false],
    ['queued', 'ERP call abandoned by its caller while queued for a call slot', false],
    ['retrying', 'ERP call abandoned by its caller while waiting to retry', false],
    ['shared', 'ERP read abandoned by its caller while sharing an identical read', false],
    ['sent', 'ERP call abandoned by its caller while on the wire', true],
  ])('%s', (phase, message, mayHaveReachedErp) => {
    expect(new ErpAbortedError({ phase, path: '/p' })).toEqual(
      expect.objectContaining({ code: ErpErrorCode.Aborted, phase, message, mayHaveReachedErp, path: '/p', retryable: false }),
    );
  });

  it('whoever knows better says whether the ERP may have seen it; without a phase it may have', () => {
    expect(new ErpAbortedError({ phase: 'retrying', mayHaveReachedErp: true }).mayHaveReachedErp).toBe(true);
    expect(new ErpAbortedError()).toEqual(expect.objectContaining({ message: 'ERP call abandoned by its caller', phase: undefined, mayHaveReachedErp: true }));
  });
});

it('UnreachableCaseError names the value that slipped past the types', () => {
  const code = 'ERP_NEW' as never;
  expect(() => {
    throw new UnreachableCaseError(code);
  }).toThrow('unreachable case: "ERP_NEW"');
});
