/**
 * `etcd-ts [etcd's flags]`: starts a member, or prints the version. Exits 0 after a clean shutdown on
 * SIGTERM or SIGINT; exits 1 with the reason when the configuration or the data dir is unusable.
 */
import { createLogger } from '../base/logger.js';
import { versionLines } from '../base/version.js';
import { ConfigError, loadConfig, type ServerConfig } from '../server/config.js';
import { startMember } from '../server/bootstrap.js';

async function main(): Promise<void> {
  let cfg: ServerConfig;
  try {
    cfg = loadConfig(process.argv.slice(2));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`etcd-ts: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (cfg.printVersion) {
    process.stdout.write(versionLines().join('\n') + '\n');
    return;
  }
  const log = createLogger({ level: cfg.logLevel, outputs: cfg.logOutputs });
  const main = log.child('etcdmain');
  let member: Awaited<ReturnType<typeof startMember>>;
  try {
    member = await startMember(cfg, log);
  } catch (err) {
    main.error('failed to start etcd-ts', { error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    main.info('received signal; shutting down', { signal });
    member.stop().then(
      () => process.exit(process.exitCode ?? 0),
      (err: unknown) => {
        main.error('error while shutting down', { error: String(err) });
        process.exit(1);
      },
    );
  };
  void member.ended.then(({ code, reason }) => {
    main.warn('stopping on its own', { reason });
    process.exitCode = code;
    shutdown('none');
  });
  process.on('SIGTERM', () => shutdown('terminated'));
  process.on('SIGINT', () => shutdown('interrupt'));
}

await main();
