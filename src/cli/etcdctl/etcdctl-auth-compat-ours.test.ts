/**
 * The auth/user/role comparisons again, with etcdctl-ts talking to etcd-ts (bin/etcd-ts) while the real
 * etcdctl talks to the real etcd: the server's auth is held to etcd's output too.
 */
process.env['ETCDCTL_COMPAT_SERVER'] = 'ours';
await import('./etcdctl-auth-compat.test.js');
