/**
 * Structured JSON logging in the shape of etcd's zap logs ({"level","ts","caller","msg", fields...}) so that
 * operators' log tooling reads our lines as it reads etcd's. `caller` names our module, not a Go file.
 */
import { pino, type Logger as PinoLogger } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'panic' | 'fatal';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines carry `caller` = the given module name. */
  child(caller: string): Logger;
}

class PinoBacked implements Logger {
  readonly #p: PinoLogger;
  constructor(p: PinoLogger) {
    this.#p = p;
  }
  debug(msg: string, fields?: LogFields): void {
    this.#p.debug(fields ?? {}, msg);
  }
  info(msg: string, fields?: LogFields): void {
    this.#p.info(fields ?? {}, msg);
  }
  warn(msg: string, fields?: LogFields): void {
    this.#p.warn(fields ?? {}, msg);
  }
  error(msg: string, fields?: LogFields): void {
    this.#p.error(fields ?? {}, msg);
  }
  child(caller: string): Logger {
    return new PinoBacked(this.#p.child({ caller }));
  }
}

function pinoLevel(level: LogLevel): string {
  return level === 'panic' ? 'fatal' : level;
}

/** outputs: etcd's --log-outputs values: "default" and "stderr" mean fd 2, "stdout" fd 1, else a file path. */
export function createLogger(options: { level: LogLevel; outputs?: readonly string[] }): Logger {
  const target = options.outputs?.[0] ?? 'default';
  const dest = target === 'stdout' ? 1 : target === 'default' || target === 'stderr' ? 2 : target;
  const p = pino(
    {
      level: pinoLevel(options.level),
      base: null,
      messageKey: 'msg',
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest, sync: true }),
  );
  return new PinoBacked(p);
}

/** A logger that drops everything: for tests and library use. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
