/** The watch subsystem's view of the MVCC store: revisions, history in batches, and past key-values. */
import type { KvStore } from '../mvcc/kv-store.js';
import type { HistoryReader } from './watchable-store.js';

/**
 * `store` is asked for on every call, so a server that replaces its store (a snapshot received from the
 * leader) keeps one reader.
 */
export function mvccHistory(store: () => KvStore): HistoryReader {
  return {
    revision: () => store().revision,
    compactRevision: () => store().compactRevision,
    changes: (fromRev, options) => store().changes(fromRev, options),
    // etcd reads prev_kv as a Range at modRevision - 1: nothing when that revision is compacted.
    kvAt: (key, rev) => {
      const s = store();
      return rev < 1 || rev < s.compactRevision ? undefined : s.range(key, undefined, { revision: rev }).kvs[0];
    },
  };
}
