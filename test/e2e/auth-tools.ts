/**
 * A gRPC connection for auth e2e tests: the Auth, KV, Lease and Watch clients on one channel, every call
 * optionally carrying a token in metadata "token" (as clientv3 sends it).
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import {
  AuthClient, KVClient, LeaseClient, WatchClient,
  AuthDisableRequest, AuthEnableRequest, AuthStatusRequest, AuthenticateRequest, AuthRoleAddRequest, AuthRoleGetRequest,
  AuthRoleGrantPermissionRequest, AuthUserAddRequest, AuthUserChangePasswordRequest, AuthUserDeleteRequest,
  AuthUserGetRequest, AuthUserGrantRoleRequest, AuthUserRevokeRoleRequest, AuthUserListRequest, DeleteRangeRequest, LeaseGrantRequest, PutRequest, RangeRequest, TxnRequest,
} from '../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';

const deadlineMs = 10_000;
export const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Request literals are partial; the codecs need whole messages. */
const codecs: Record<string, { fromPartial(o: never): unknown }> = {
  put: PutRequest, range: RangeRequest, deleteRange: DeleteRangeRequest, txn: TxnRequest,
  authenticate: AuthenticateRequest, userAdd: AuthUserAddRequest, userGrantRole: AuthUserGrantRoleRequest,
  roleAdd: AuthRoleAddRequest, roleGrantPermission: AuthRoleGrantPermissionRequest, authEnable: AuthEnableRequest,
  authDisable: AuthDisableRequest, authStatus: AuthStatusRequest, userDelete: AuthUserDeleteRequest, userGet: AuthUserGetRequest,
  roleGet: AuthRoleGetRequest, userChangePassword: AuthUserChangePasswordRequest, userRevokeRole: AuthUserRevokeRoleRequest, userList: AuthUserListRequest, leaseGrant: LeaseGrantRequest,
};

/** One connection with the clients the auth tests use; every call may carry a token. */
export class Conn {
  readonly kv: KVClient;
  readonly auth: AuthClient;
  readonly lease: LeaseClient;
  readonly watch: WatchClient;

  constructor(endpoint: string) {
    const creds = credentials.createInsecure();
    this.kv = new KVClient(endpoint, creds);
    const channelOverride = this.kv.getChannel();
    this.auth = new AuthClient(endpoint, creds, { channelOverride });
    this.lease = new LeaseClient(endpoint, creds, { channelOverride });
    this.watch = new WatchClient(endpoint, creds, { channelOverride });
  }

  call<Res>(client: object, method: string, req: unknown, token?: string): Promise<Res> {
    const md = new Metadata();
    if (token !== undefined) md.set('token', token);
    const fn = (client as Record<string, (...a: unknown[]) => unknown>)[method];
    const codec = codecs[method];
    if (!fn || !codec) throw new Error(`no method ${method}`);
    const whole = codec.fromPartial(req as never);
    return new Promise((ok, fail) => {
      fn.call(client, whole, md, { deadline: Date.now() + deadlineMs }, (err: ServiceError | null, res: Res) => (err ? fail(err) : ok(res)));
    });
  }

  close(): void {
    this.kv.close();
  }
}


/** The gRPC failure of a call as "code message", or "ok". */
export async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    const err = e as ServiceError;
    return `${err.code} ${err.details}`;
  }
}
