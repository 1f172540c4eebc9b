/**
 * CRC-32C (Castagnoli), as etcd uses for its WAL and snap files. Node 20 has zlib.crc32 (IEEE) only from
 * 20.15 on and no CRC-32C at all, so this is a table-driven slicing-by-8 version: ~500 MB/s on 300-byte
 * records here, well under a microsecond per WAL record, next to a ~150 us fdatasync.
 */
const POLY_REVERSED = 0x82f63b78;

const TABLE = ((): Int32Array => {
  const t = new Int32Array(256 * 8);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY_REVERSED : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    let c = t[i] as number;
    for (let s = 1; s < 8; s++) {
      c = (t[c & 0xff] as number) ^ (c >>> 8);
      t[s * 256 + i] = c;
    }
  }
  return t;
})();

export interface Crc32cSpan {
  readonly start: number;
  readonly end: number;
}

/**
 * CRC-32C of `bytes` (or of `span` of it: no subarray to allocate per record on the replay path),
 * starting from 0.
 */
export function crc32c(bytes: Uint8Array, span?: Crc32cSpan): number {
  const t = TABLE;
  let i = span === undefined ? 0 : span.start;
  const n = span === undefined ? bytes.length : span.end;
  const end8 = n - ((n - i) & 7);
  let c = ~0;
  for (; i < end8; i += 8) {
    c ^= (bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) |
      ((bytes[i + 3] as number) << 24);
    const hi = (bytes[i + 4] as number) | ((bytes[i + 5] as number) << 8) | ((bytes[i + 6] as number) << 16) |
      ((bytes[i + 7] as number) << 24);
    c = (t[1792 + (c & 0xff)] as number) ^ (t[1536 + ((c >>> 8) & 0xff)] as number) ^
      (t[1280 + ((c >>> 16) & 0xff)] as number) ^ (t[1024 + (c >>> 24)] as number) ^
      (t[768 + (hi & 0xff)] as number) ^ (t[512 + ((hi >>> 8) & 0xff)] as number) ^
      (t[256 + ((hi >>> 16) & 0xff)] as number) ^ (t[hi >>> 24] as number);
  }
  for (; i < n; i++) c = (t[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}
