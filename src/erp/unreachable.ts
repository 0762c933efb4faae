/**
 * The `default` of every switch over a union: `default: throw new UnreachableCaseError(value)`. The argument is typed
 * `never`, so a member added to the union (a new error code, endpoint, call kind) fails to compile until each switch
 * handles it; should a value slip past the types at run time (a cast, an untyped caller), the switch throws instead
 * of returning undefined.
 */
export class UnreachableCaseError extends Error {
  constructor(value: never) {
    super(`unreachable case: ${JSON.stringify(value)}`);
    this.name = 'UnreachableCaseError';
  }
}
