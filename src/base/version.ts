/** Versions we report. The API we implement is etcd 3.4's; etcd-ts has its own release number. */
import { readFileSync } from 'node:fs';

export const etcdApiVersion = '3.4.23';
export const clusterVersion = '3.4.0';
/** etcd reports the cluster version with major.minor only in MemberList / Status headers. */
export const clusterVersionShort = '3.4';

function readOwnVersion(): string {
  try {
    const url = new URL('../../../package.json', import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export const etcdTsVersion = readOwnVersion();

/** `etcd --version` lines, in etcd's format; the runtime lines name Node.js where etcd names Go. */
export function versionLines(): string[] {
  return [
    `etcd Version: ${etcdApiVersion}`,
    `Git SHA: etcd-ts ${etcdTsVersion}`,
    `Go Version: node ${process.version}`,
    `Go OS/Arch: ${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  ];
}
