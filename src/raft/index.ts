/** The raft core's public surface: what the server, the simulator and tools import. */
export * from './types.js';
export * from './contract.js';
export { RawNode } from './raw-node.js';
export type { RawNodeConfig, BootstrapPeer } from './raw-node.js';
export type { RaftExtraConfig } from './raft.js';
export { MemoryStorage, EMPTY_CONF_STATE, EMPTY_HARD_STATE, EMPTY_SNAPSHOT } from './memory-storage.js';
export { SeededRng } from './prng.js';
export type { Logger } from './logger.js';
export { SILENT_LOGGER } from './logger.js';
export {
  confChangeV1ToV2,
  decodeConfChangeV1,
  decodeConfChangeV2,
  encodeConfChangeV1,
  encodeConfChangeV2,
  enterJoint,
  formatConfChanges,
  isLeaveJoint,
  leaveJointChange,
  parseConfChanges,
} from './conf-change.js';
export type { ConfChangeV1 } from './conf-change.js';
export { ConfChangeError } from './confchange/changer.js';
export { describeEntry, describeMessage, describeReady, describeHardState, describeConfState } from './describe.js';
export { isLocalMsg, isResponseMsg, makeMessage, ENTRY_OVERHEAD_BYTES } from './util.js';
