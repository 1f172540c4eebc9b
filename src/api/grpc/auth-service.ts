/**
 * etcd's Auth service: enable/disable, Authenticate, and user and role management. Decoding and error
 * mapping only; the work is the AuthServer's (src/auth).
 */
import type { Logger } from '../../base/logger.js';
import {
  AuthService, type AuthServer as AuthServiceServer,
  type AuthDisableRequest, type AuthDisableResponse, type AuthStatusRequest, type AuthStatusResponse, type AuthEnableRequest, type AuthEnableResponse,
  type AuthenticateRequest, type AuthenticateResponse, type AuthRoleAddRequest, type AuthRoleAddResponse,
  type AuthRoleDeleteRequest, type AuthRoleDeleteResponse, type AuthRoleGetRequest, type AuthRoleGetResponse,
  type AuthRoleGrantPermissionRequest, type AuthRoleGrantPermissionResponse, type AuthRoleListRequest,
  type AuthRoleListResponse, type AuthRoleRevokePermissionRequest, type AuthRoleRevokePermissionResponse,
  type AuthUserAddRequest, type AuthUserAddResponse, type AuthUserChangePasswordRequest,
  type AuthUserChangePasswordResponse, type AuthUserDeleteRequest, type AuthUserDeleteResponse,
  type AuthUserGetRequest, type AuthUserGetResponse, type AuthUserGrantRoleRequest, type AuthUserGrantRoleResponse,
  type AuthUserListRequest, type AuthUserListResponse, type AuthUserRevokeRoleRequest, type AuthUserRevokeRoleResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { ServiceRegistration } from './services.js';
import { unary } from './unary.js';

export interface AuthApi {
  authEnable(request: AuthEnableRequest): Promise<AuthEnableResponse>;
  authDisable(request: AuthDisableRequest): Promise<AuthDisableResponse>;
  authStatus(request: AuthStatusRequest): Promise<AuthStatusResponse>;
  authenticate(request: AuthenticateRequest): Promise<AuthenticateResponse>;
  userAdd(request: AuthUserAddRequest): Promise<AuthUserAddResponse>;
  userGet(request: AuthUserGetRequest): Promise<AuthUserGetResponse>;
  userList(request: AuthUserListRequest): Promise<AuthUserListResponse>;
  userDelete(request: AuthUserDeleteRequest): Promise<AuthUserDeleteResponse>;
  userChangePassword(request: AuthUserChangePasswordRequest): Promise<AuthUserChangePasswordResponse>;
  userGrantRole(request: AuthUserGrantRoleRequest): Promise<AuthUserGrantRoleResponse>;
  userRevokeRole(request: AuthUserRevokeRoleRequest): Promise<AuthUserRevokeRoleResponse>;
  roleAdd(request: AuthRoleAddRequest): Promise<AuthRoleAddResponse>;
  roleGet(request: AuthRoleGetRequest): Promise<AuthRoleGetResponse>;
  roleList(request: AuthRoleListRequest): Promise<AuthRoleListResponse>;
  roleDelete(request: AuthRoleDeleteRequest): Promise<AuthRoleDeleteResponse>;
  roleGrantPermission(request: AuthRoleGrantPermissionRequest): Promise<AuthRoleGrantPermissionResponse>;
  roleRevokePermission(request: AuthRoleRevokePermissionRequest): Promise<AuthRoleRevokePermissionResponse>;
}

export function authService(api: AuthApi, log: Logger): ServiceRegistration {
  return {
    definition: AuthService,
    implementation: {
      authEnable: unary('AuthEnable', log, (r: AuthEnableRequest) => api.authEnable(r)),
      authDisable: unary('AuthDisable', log, (r: AuthDisableRequest) => api.authDisable(r)),
      authStatus: unary('AuthStatus', log, (r: AuthStatusRequest) => api.authStatus(r)),
      authenticate: unary('Authenticate', log, (r: AuthenticateRequest) => api.authenticate(r)),
      userAdd: unary('UserAdd', log, (r: AuthUserAddRequest) => api.userAdd(r)),
      userGet: unary('UserGet', log, (r: AuthUserGetRequest) => api.userGet(r)),
      userList: unary('UserList', log, (r: AuthUserListRequest) => api.userList(r)),
      userDelete: unary('UserDelete', log, (r: AuthUserDeleteRequest) => api.userDelete(r)),
      userChangePassword: unary('UserChangePassword', log, (r: AuthUserChangePasswordRequest) => api.userChangePassword(r)),
      userGrantRole: unary('UserGrantRole', log, (r: AuthUserGrantRoleRequest) => api.userGrantRole(r)),
      userRevokeRole: unary('UserRevokeRole', log, (r: AuthUserRevokeRoleRequest) => api.userRevokeRole(r)),
      roleAdd: unary('RoleAdd', log, (r: AuthRoleAddRequest) => api.roleAdd(r)),
      roleGet: unary('RoleGet', log, (r: AuthRoleGetRequest) => api.roleGet(r)),
      roleList: unary('RoleList', log, (r: AuthRoleListRequest) => api.roleList(r)),
      roleDelete: unary('RoleDelete', log, (r: AuthRoleDeleteRequest) => api.roleDelete(r)),
      roleGrantPermission: unary('RoleGrantPermission', log, (r: AuthRoleGrantPermissionRequest) => api.roleGrantPermission(r)),
      roleRevokePermission: unary('RoleRevokePermission', log, (r: AuthRoleRevokePermissionRequest) => api.roleRevokePermission(r)),
    } satisfies Partial<Record<keyof AuthServiceServer, unknown>>,
  };
}
