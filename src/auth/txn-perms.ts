/**
 * A txn's permissions, as etcd checks them: read on every compare's range, and every operation of BOTH
 * branches, whichever one runs (the outcome of the compares must not decide what a user may touch).
 * Nested txns are checked the same way (etcd 3.4 forgot them; later releases check them).
 */
import type { RequestOp, TxnRequest } from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { AuthInfo, AuthStore } from './auth-store.js';

export function checkTxnPermissions(store: AuthStore, info: AuthInfo | null, txn: TxnRequest): void {
  if (!store.enabled) return;
  for (const c of txn.compare) store.checkRange(info, c);
  checkOps(store, info, txn.success);
  checkOps(store, info, txn.failure);
}

function checkOps(store: AuthStore, info: AuthInfo | null, ops: readonly RequestOp[]): void {
  for (const op of ops) {
    const r = op.request;
    switch (r?.$case) {
      case 'requestRange':
        store.checkRange(info, r.value);
        break;
      case 'requestPut':
        store.checkPut(info, r.value.key);
        break;
      case 'requestDeleteRange':
        if (r.value.prevKv) store.checkRange(info, r.value);
        store.checkDeleteRange(info, r.value);
        break;
      case 'requestTxn':
        checkTxnPermissions(store, info, r.value);
        break;
      default:
        break;
    }
  }
}
