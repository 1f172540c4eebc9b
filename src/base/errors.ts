/**
 * The one table of errors clients can see. Codes and messages are part of etcd's wire contract:
 * clients (clientv3, etcdctl) match on the exact message text to rebuild typed errors.
 */

/** gRPC status codes, numbered as in the gRPC spec. */
export const GrpcCode = {
  OK: 0,
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

const C = GrpcCode;

export const errorTable = {
  EmptyKey: [C.InvalidArgument, 'etcdserver: key is not provided'],
  KeyNotFound: [C.InvalidArgument, 'etcdserver: key not found'],
  ValueProvided: [C.InvalidArgument, 'etcdserver: value is provided'],
  LeaseProvided: [C.InvalidArgument, 'etcdserver: lease is provided'],
  TooManyOps: [C.InvalidArgument, 'etcdserver: too many operations in txn request'],
  DuplicateKey: [C.InvalidArgument, 'etcdserver: duplicate key given in txn request'],
  // etcd 3.4 crashes on an unknown sort target and ignores an unknown sort order; later etcd refuses both so.
  InvalidSortOption: [C.InvalidArgument, 'etcdserver: invalid sort option'],
  Compacted: [C.OutOfRange, 'etcdserver: mvcc: required revision has been compacted'],
  FutureRev: [C.OutOfRange, 'etcdserver: mvcc: required revision is a future revision'],
  NoSpace: [C.ResourceExhausted, 'etcdserver: mvcc: database space exceeded'],

  LeaseNotFound: [C.NotFound, 'etcdserver: requested lease not found'],
  LeaseExist: [C.FailedPrecondition, 'etcdserver: lease already exists'],
  LeaseTTLTooLarge: [C.OutOfRange, 'etcdserver: too large lease TTL'],

  WatchCanceled: [C.Canceled, 'etcdserver: watch canceled'],

  MemberExist: [C.FailedPrecondition, 'etcdserver: member ID already exist'],
  PeerURLExist: [C.FailedPrecondition, 'etcdserver: Peer URLs already exists'],
  MemberNotEnoughStarted: [C.FailedPrecondition, 'etcdserver: re-configuration failed due to not enough started members'],
  MemberBadURLs: [C.InvalidArgument, 'etcdserver: given member URLs are invalid'],
  MemberNotFound: [C.NotFound, 'etcdserver: member not found'],
  MemberNotLearner: [C.FailedPrecondition, 'etcdserver: can only promote a learner member'],
  LearnerNotReady: [C.FailedPrecondition, 'etcdserver: can only promote a learner member which is in sync with leader'],
  TooManyLearners: [C.FailedPrecondition, 'etcdserver: too many learner members in cluster'],

  RequestTooLarge: [C.InvalidArgument, 'etcdserver: request is too large'],
  TooManyRequests: [C.ResourceExhausted, 'etcdserver: too many requests'],

  RootUserNotExist: [C.FailedPrecondition, 'etcdserver: root user does not exist'],
  RootRoleNotExist: [C.FailedPrecondition, 'etcdserver: root user does not have root role'],
  UserAlreadyExist: [C.FailedPrecondition, 'etcdserver: user name already exists'],
  UserEmpty: [C.InvalidArgument, 'etcdserver: user name is empty'],
  UserNotFound: [C.FailedPrecondition, 'etcdserver: user name not found'],
  RoleAlreadyExist: [C.FailedPrecondition, 'etcdserver: role name already exists'],
  RoleNotFound: [C.FailedPrecondition, 'etcdserver: role name not found'],
  RoleEmpty: [C.InvalidArgument, 'etcdserver: role name is empty'],
  AuthFailed: [C.InvalidArgument, 'etcdserver: authentication failed, invalid user ID or password'],
  PermissionDenied: [C.PermissionDenied, 'etcdserver: permission denied'],
  RoleNotGranted: [C.FailedPrecondition, 'etcdserver: role is not granted to the user'],
  PermissionNotGranted: [C.FailedPrecondition, 'etcdserver: permission is not granted to the role'],
  AuthNotEnabled: [C.FailedPrecondition, 'etcdserver: authentication is not enabled'],
  InvalidAuthToken: [C.Unauthenticated, 'etcdserver: invalid auth token'],
  InvalidAuthMgmt: [C.InvalidArgument, 'etcdserver: invalid auth management'],
  AuthOldRevision: [C.InvalidArgument, 'etcdserver: revision of auth store is old'],
  // etcd 3.4 does not map this one to a gRPC error: clients see its internal text with code Unknown.
  NoPasswordUser: [C.Unknown, 'auth: authentication failed, password was given for no password user'],
  // etcd 3.4's Maintenance service returns its auth check's errors unmapped (code Unknown, internal text).
  UnmappedAuthPermissionDenied: [C.Unknown, 'auth: permission denied'],
  UnmappedAuthUserEmpty: [C.Unknown, 'auth: user name is empty'],
  UnmappedAuthUserNotFound: [C.Unknown, 'auth: user not found'],
  UnmappedAuthInvalidToken: [C.Unknown, 'auth: invalid auth token'],

  NoLeader: [C.Unavailable, 'etcdserver: no leader'],
  NotLeader: [C.FailedPrecondition, 'etcdserver: not leader'],
  LeaderChanged: [C.Unavailable, 'etcdserver: leader changed'],
  NotCapable: [C.Unavailable, 'etcdserver: not capable'],
  Stopped: [C.Unavailable, 'etcdserver: server stopped'],
  Timeout: [C.Unavailable, 'etcdserver: request timed out'],
  TimeoutDueToLeaderFail: [C.Unavailable, 'etcdserver: request timed out, possibly due to previous leader failure'],
  TimeoutDueToConnectionLost: [C.Unavailable, 'etcdserver: request timed out, possibly due to connection lost'],
  TimeoutWaitAppliedIndex: [C.Unavailable, 'etcdserver: request timed out, waiting for the applied index took too long'],
  Unhealthy: [C.Unavailable, 'etcdserver: unhealthy cluster'],
  Corrupt: [C.DataLoss, 'etcdserver: corrupt cluster'],
  NotSupportedForLearner: [C.Unavailable, 'etcdserver: rpc not supported for learner'],
  BadLeaderTransferee: [C.FailedPrecondition, 'etcdserver: bad leader transferee'],

  // The election service answers with plain Go errors, which gRPC carries as Unknown.
  ElectionNotLeader: [C.Unknown, 'election: not leader'],
  ElectionNoLeader: [C.Unknown, 'election: no leader'],
  ElectionMissingLeaderKey: [C.Unknown, '"leader" field must be provided'],
} as const satisfies Record<string, readonly [GrpcCode, string]>;

export type ErrorKind = keyof typeof errorTable;

/**
 * An expected operating error: bad input, a compacted revision, no leader. Never an assertion failure.
 * The API layer turns it into a gRPC status with exactly this code and message.
 */
export class EtcdError extends Error {
  readonly kind: ErrorKind;
  readonly grpcCode: GrpcCode;

  constructor(kind: ErrorKind) {
    const [grpcCode, message] = errorTable[kind];
    super(message);
    this.name = 'EtcdError';
    this.kind = kind;
    this.grpcCode = grpcCode;
  }
}

export function isEtcdError(err: unknown, kind?: ErrorKind): err is EtcdError {
  return err instanceof EtcdError && (kind === undefined || err.kind === kind);
}
