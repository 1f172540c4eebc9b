/** Why the WAL refused to open or write. Operators read these: they name the file and offset at fault. */
export type WalErrorKind =
  | 'exists'
  | 'not-found'
  | 'corrupt'
  | 'metadata-mismatch'
  | 'snapshot-not-found'
  | 'snapshot-mismatch'
  | 'record-too-large'
  | 'closed';

export interface WalErrorPlace {
  readonly file?: string;
  readonly offset?: number;
}

export class WalError extends Error {
  readonly kind: WalErrorKind;
  readonly file: string | null;
  readonly offset: number | null;

  constructor(kind: WalErrorKind, detail: string, place: WalErrorPlace = {}) {
    const at = place.offset === undefined ? '' : ` at offset ${place.offset}`;
    const where = place.file === undefined ? '' : ` (${place.file}${at})`;
    super(`wal: ${kind}: ${detail}${where}`);
    this.name = 'WalError';
    this.kind = kind;
    this.file = place.file ?? null;
    this.offset = place.offset ?? null;
  }
}
