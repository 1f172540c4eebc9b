/**
 * Every bound of the watch subsystem, in one place. What happens past each one is said next to it: a
 * watcher that does not fit is moved aside (victim) and caught up later from history, never buffered
 * without bound; a client that stops reading its own control responses loses its stream.
 */
export interface WatchLimits {
  /** Watchers on this member (all streams). Past it a create is answered created+canceled. */
  readonly watchersMax: number;
  /** Watchers (and ids kept for compacted ones) on one stream. Past it, likewise. */
  readonly watchersPerStreamMax: number;
  /**
   * Responses a stream holds while its transport reports back-pressure. Past either bound an event
   * response is not queued: its watcher becomes a victim, holding no events, until the stream drains.
   */
  readonly streamQueuedResponsesMax: number;
  readonly streamQueuedBytesMax: number;
  /** The same, summed over all streams of the member: bounds the memory of slow clients together. */
  readonly queuedBytesMax: number;
  /**
   * Control responses (created, canceled, progress) queued on one stream. They are never dropped; past
   * this the client has stopped reading while still sending requests, and its stream is failed.
   */
  readonly streamQueuedControlMax: number;
  /** Unsynced watchers caught up per round of the catch-up loop (etcd: 512). */
  readonly syncWatchersMax: number;
  /**
   * History read per catch-up round, in records and in bytes. A round always ends on a revision
   * boundary, so one revision bigger than this is still read (and sent) whole. A watcher gets at most
   * one response per round, so these also bound catch-up responses: with prev_kv about twice the bytes,
   * which must stay under what clients accept (grpc-js and the etcd3 client refuse messages over 4 MiB).
   */
  readonly syncRecordsMax: number;
  readonly syncBytesMax: number;
}

export const defaultWatchLimits: WatchLimits = {
  watchersMax: 1_000_000,
  watchersPerStreamMax: 100_000,
  streamQueuedResponsesMax: 1024,
  streamQueuedBytesMax: 1024 * 1024,
  queuedBytesMax: 64 * 1024 * 1024,
  streamQueuedControlMax: 4096,
  syncWatchersMax: 512,
  syncRecordsMax: 1000,
  syncBytesMax: 1024 * 1024,
};

/** etcd's floor for --experimental-watch-progress-notify-interval. */
export const progressIntervalMinMs = 100;
/** etcd's default progress notification interval (10 minutes). */
export const progressIntervalDefaultMs = 10 * 60 * 1000;

/** etcd's reading of --experimental-watch-progress-notify-interval: 0 keeps the default, small is raised. */
export function effectiveProgressIntervalMs(configuredMs: number): { intervalMs: number; raised: boolean } {
  if (configuredMs <= 0) return { intervalMs: progressIntervalDefaultMs, raised: false };
  if (configuredMs < progressIntervalMinMs) return { intervalMs: progressIntervalMinMs, raised: true };
  return { intervalMs: configuredMs, raised: false };
}
