/** Every bound of the lock and election recipes, in one place. */
export const concurrencyLimits = {
  /**
   * Change batches a server-held watcher queues before the store parks it (it then holds nothing and is
   * caught up from history once its consumer drains the queue): an Observe stream whose client stops
   * reading costs at most this many responses of memory.
   */
  watchQueuedBatchesMax: 64,
  /** etcd's session TTL for a Lock or Campaign (Proclaim, Resign) that names no lease: a lease is granted. */
  sessionTtlSeconds: 60,
} as const;
