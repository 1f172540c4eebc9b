/** The Auth service's management calls (users, roles, enabling auth), as clientv3's Auth interface. */
import type { Metadata, CallOptions as GrpcCallOptions, ClientUnaryCall } from '@grpc/grpc-js';
import type { Permission } from '../gen/etcd/auth/authpb/auth.js';
import type {
  AuthDisableResponse,
  AuthEnableResponse,
  AuthRoleAddResponse,
  AuthRoleDeleteResponse,
  AuthRoleGetResponse,
  AuthRoleGrantPermissionResponse,
  AuthRoleListResponse,
  AuthRoleRevokePermissionResponse,
  AuthUserAddResponse,
  AuthUserChangePasswordResponse,
  AuthUserDeleteResponse,
  AuthUserGetResponse,
  AuthUserGrantRoleResponse,
  AuthUserListResponse,
  AuthUserRevokeRoleResponse,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { AuthClient } from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { Callback, CallOptions, Invoker } from './invoker.js';

type Send<Req, Res> = (client: AuthClient, req: Req, md: Metadata, opts: GrpcCallOptions, cb: Callback<Res>) => ClientUnaryCall;

export class AuthApi {
  #invoker: Invoker;

  constructor(invoker: Invoker) {
    this.#invoker = invoker;
  }

  #call<Req, Res>(send: Send<Req, Res>, req: Req, mutable: boolean, options?: CallOptions): Promise<Res> {
    return this.#invoker.call({ mutable, send: (c, md, o, cb) => send(c.auth, req, md, o, cb) }, options);
  }

  authEnable(options?: CallOptions): Promise<AuthEnableResponse> {
    return this.#call((c, r, md, o, cb) => c.authEnable(r, md, o, cb), {}, true, options);
  }
  authDisable(options?: CallOptions): Promise<AuthDisableResponse> {
    return this.#call((c, r, md, o, cb) => c.authDisable(r, md, o, cb), {}, true, options);
  }
  userAdd(input: { name: string; password: string; noPassword: boolean }, options?: CallOptions): Promise<AuthUserAddResponse> {
    const req = { name: input.name, password: input.password, options: { noPassword: input.noPassword } };
    return this.#call((c, r, md, o, cb) => c.userAdd(r, md, o, cb), req, true, options);
  }
  userGet(name: string, options?: CallOptions): Promise<AuthUserGetResponse> {
    return this.#call((c, r, md, o, cb) => c.userGet(r, md, o, cb), { name }, false, options);
  }
  userList(options?: CallOptions): Promise<AuthUserListResponse> {
    return this.#call((c, r, md, o, cb) => c.userList(r, md, o, cb), {}, false, options);
  }
  userDelete(name: string, options?: CallOptions): Promise<AuthUserDeleteResponse> {
    return this.#call((c, r, md, o, cb) => c.userDelete(r, md, o, cb), { name }, true, options);
  }
  userChangePassword(input: { name: string; password: string }, options?: CallOptions): Promise<AuthUserChangePasswordResponse> {
    return this.#call((c, r, md, o, cb) => c.userChangePassword(r, md, o, cb), input, true, options);
  }
  userGrantRole(input: { user: string; role: string }, options?: CallOptions): Promise<AuthUserGrantRoleResponse> {
    return this.#call((c, r, md, o, cb) => c.userGrantRole(r, md, o, cb), input, true, options);
  }
  userRevokeRole(input: { name: string; role: string }, options?: CallOptions): Promise<AuthUserRevokeRoleResponse> {
    return this.#call((c, r, md, o, cb) => c.userRevokeRole(r, md, o, cb), input, true, options);
  }
  roleAdd(name: string, options?: CallOptions): Promise<AuthRoleAddResponse> {
    return this.#call((c, r, md, o, cb) => c.roleAdd(r, md, o, cb), { name }, true, options);
  }
  roleGet(role: string, options?: CallOptions): Promise<AuthRoleGetResponse> {
    return this.#call((c, r, md, o, cb) => c.roleGet(r, md, o, cb), { role }, false, options);
  }
  roleList(options?: CallOptions): Promise<AuthRoleListResponse> {
    return this.#call((c, r, md, o, cb) => c.roleList(r, md, o, cb), {}, false, options);
  }
  roleDelete(role: string, options?: CallOptions): Promise<AuthRoleDeleteResponse> {
    return this.#call((c, r, md, o, cb) => c.roleDelete(r, md, o, cb), { role }, true, options);
  }
  roleGrantPermission(input: { name: string; perm: Permission }, options?: CallOptions): Promise<AuthRoleGrantPermissionResponse> {
    return this.#call((c, r, md, o, cb) => c.roleGrantPermission(r, md, o, cb), input, true, options);
  }
  roleRevokePermission(input: { role: string; key: Buffer; rangeEnd: Buffer }, options?: CallOptions): Promise<AuthRoleRevokePermissionResponse> {
    return this.#call((c, r, md, o, cb) => c.roleRevokePermission(r, md, o, cb), input, true, options);
  }
}
