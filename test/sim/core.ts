/** Binds the simulator to the real raft core in src/raft (the same modules the server runs). */
import { confChangeV1ToV2, decodeConfChangeV1, decodeConfChangeV2 } from '../../src/raft/conf-change.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { RawNode } from '../../src/raft/raw-node.js';
import { EntryType } from '../../src/raft/types.js';
import type { SimCore } from './host.js';

export const realCore: SimCore = {
  newStorage: () => new MemoryStorage(),
  newRawNode: (config, log) => new RawNode(log === null ? config : { ...config, logger: { info: log, warn: log } }),
  decodeConfChange: (entry) =>
    entry.type === EntryType.ConfChange ? confChangeV1ToV2(decodeConfChangeV1(entry.data)) : decodeConfChangeV2(entry.data),
  bootstrap: (raw, peers) => {
    if (!(raw instanceof RawNode)) throw new Error('bootstrap needs the real RawNode');
    raw.bootstrap(peers.map((id) => ({ id })));
  },
};

/** Kept async so the command line can load a core variant chosen at run time. */
export async function loadCore(): Promise<SimCore> {
  return realCore;
}
