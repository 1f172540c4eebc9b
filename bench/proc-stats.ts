// What a server process costs, read from Linux's /proc: resident memory (VmRSS now, VmHWM the peak the
// kernel saw, RssAnon heap versus RssFile mapped files such as a memory-mapped database) and CPU time.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface MemoryStatus {
  rssBytes: number;
  hwmBytes: number;
  anonBytes: number;
  fileBytes: number;
}

/** Parses the "VmRSS:   1234 kB" lines of /proc/<pid>/status. */
export function parseStatus(text: string): MemoryStatus {
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    return m?.[1] === undefined ? NaN : Number(m[1]) * 1024;
  };
  return { rssBytes: field('VmRSS'), hwmBytes: field('VmHWM'), anonBytes: field('RssAnon'), fileBytes: field('RssFile') };
}

export function readMemory(pid: number): MemoryStatus {
  return parseStatus(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

let clockTicksPerSecond: number | undefined;

function clockTicks(): number {
  if (clockTicksPerSecond === undefined) {
    try {
      clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

/** utime + stime from /proc/<pid>/stat, fields 14 and 15 counted after the parenthesised command name. */
export function parseStatCpuTicks(text: string): number {
  const after = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // after[0] is field 3 (state), so field n sits at after[n - 3].
  return Number(after[11]) + Number(after[12]);
}

/** CPU time (user + system) the process has used so far, in microseconds; resolution is one clock tick. */
export function readCpuUs(pid: number): number {
  return (parseStatCpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')) * 1e6) / clockTicks();
}

export function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** Samples a process's RSS on a timer while a workload runs and keeps the highest value seen. */
export class RssSampler {
  #pid: number;
  #timer: NodeJS.Timeout | undefined;
  #peakBytes = 0;

  constructor(pid: number) {
    this.#pid = pid;
  }

  start(intervalMs: number): void {
    this.sample();
    this.#timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): MemoryStatus | undefined {
    try {
      const status = readMemory(this.#pid);
      if (status.rssBytes > this.#peakBytes) this.#peakBytes = status.rssBytes;
      return status;
    } catch {
      // The process may be exiting; its last sample stands.
      return undefined;
    }
  }

  /** Stops sampling after one final sample. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.sample();
  }

  get peakBytes(): number {
    return this.#peakBytes;
  }
}
