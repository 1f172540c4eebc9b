// Turns auth on for the auth workloads: a root user (needed to enable auth), and BENCH_USER holding one
// role with readwrite on every key, so the workloads measure the permission check of a non-root user.

import { randomBytes } from 'node:crypto';
import { credentials, Metadata } from '@grpc/grpc-js';
import { AuthClient, type AuthenticateResponse } from '../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { Permission_Type } from '../src/gen/etcd/auth/authpb/auth.js';
import { BENCH_USER } from './workloads.js';

const CALL_TIMEOUT_MS = 30_000;

function call<Res>(client: AuthClient, method: string, req: unknown, md: Metadata = new Metadata()): Promise<Res> {
  const fn = (client as unknown as Record<string, (...a: unknown[]) => unknown>)[method];
  if (!fn) throw new Error(`no Auth method ${method}`);
  return new Promise((resolve, reject) => {
    fn.call(client, req, md, { deadline: Date.now() + CALL_TIMEOUT_MS }, (err: Error | null, res: Res) => (err ? reject(err) : resolve(res)));
  });
}

export async function enableBenchAuth(endpoint: string): Promise<void> {
  const client = new AuthClient(endpoint, credentials.createInsecure());
  try {
    const rootPassword = randomBytes(12).toString('hex');
    const everything = Buffer.from([0]);
    await call(client, 'userAdd', { name: 'root', password: rootPassword, options: { noPassword: false } });
    await call(client, 'userGrantRole', { user: 'root', role: 'root' });
    await call(client, 'roleAdd', { name: 'bench' });
    await call(client, 'roleGrantPermission', { name: 'bench', perm: { permType: Permission_Type.READWRITE, key: everything, rangeEnd: everything } });
    await call(client, 'userAdd', { name: BENCH_USER.name, password: BENCH_USER.password, options: { noPassword: false } });
    await call(client, 'userGrantRole', { user: BENCH_USER.name, role: 'bench' });
    await call(client, 'authEnable', {});
    // Auth is on once a login works.
    await call<AuthenticateResponse>(client, 'authenticate', { name: BENCH_USER.name, password: BENCH_USER.password });
  } finally {
    client.close();
  }
}
