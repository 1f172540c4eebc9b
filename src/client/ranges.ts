/** Range ends as etcd defines them: a prefix's end is the key with its last byte below 0xff incremented. */

/** The end of [key, end) that covers every key starting with `prefix`; "\0" (all keys from it) if none exists. */
export function prefixRangeEnd(prefix: Uint8Array): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    const byte = end[i];
    if (byte !== undefined && byte < 0xff) {
      end[i] = byte + 1;
      return end.subarray(0, i + 1);
    }
  }
  return fromKeyRangeEnd();
}

/** The range end meaning "every key greater than or equal to the key". */
export function fromKeyRangeEnd(): Buffer {
  return Buffer.from([0]);
}
