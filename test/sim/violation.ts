/** A broken safety or liveness property found by the simulator, or a broken host/core contract. */
export type ViolationKind =
  | 'election-safety'
  | 'log-matching'
  | 'leader-append-only'
  | 'leader-completeness'
  | 'state-machine-safety'
  | 'commit-regression'
  | 'term-regression'
  | 'vote-changed'
  | 'linearizable-read'
  | 'contract'
  | 'liveness'
  | 'crash';

export class SimViolation extends Error {
  constructor(
    readonly kind: ViolationKind,
    readonly detail: string,
  ) {
    super(`${kind}: ${detail}`);
    this.name = 'SimViolation';
  }
}

export function violation(kind: ViolationKind, detail: string): never {
  throw new SimViolation(kind, detail);
}
