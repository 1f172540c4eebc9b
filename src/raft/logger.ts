/** The raft core logs through an injected sink (it does no I/O of its own). */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

export const SILENT_LOGGER: Logger = {
  info: () => {},
  warn: () => {},
};
