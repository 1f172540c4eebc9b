/** Assertions stay on in production: a broken invariant stops the process rather than corrupting data. */
export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssertionError';
  }
}

export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new AssertionError(typeof message === 'function' ? message() : message);
  }
}

export function unreachable(value: never, what: string): never {
  throw new AssertionError(`unreachable: unexpected ${what}: ${String(value)}`);
}
