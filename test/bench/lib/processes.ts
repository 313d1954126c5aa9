import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** A server under test, in its own process so the load generator never shares its CPU. */
export interface Service {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export async function startService(
  name: string,
  args: readonly string[],
  env: Record<string, string>,
  url: string,
  readyPath: string,
  cwd?: string,
): Promise<Service> {
  const child = spawn(process.execPath, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited early: ${stderr}`);
    try {
      const res = await fetch(url + readyPath, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`${name} did not come up: ${stderr}`);
      await sleep(100);
    }
  }
  return {
    name,
    url,
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await Promise.race([
        new Promise((resolve) => child.once('exit', resolve)),
        sleep(5000).then(() => child.kill('SIGKILL')),
      ]);
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time (user + system) a process has used so far, in milliseconds (Linux /proc). */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssBytes(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * RSS of an idle process once V8 has given back what it kept from its boot: sampled every
 * 500 ms until it has dropped (by a megabyte or more) and then held for 5 s, or `maxMs` has
 * passed. V8's memory reducer shrinks the heap some seconds (about 9 here) after allocation
 * stops. The lowest sample, and how long after the call it was seen.
 */
export async function settledRss(
  pid: number | undefined,
  maxMs: number,
): Promise<{ rss: number; afterMs: number }> {
  const started = performance.now();
  const first = rssBytes(pid);
  let lowest = first;
  let droppedAt = started;
  const settled = () => lowest < first - 2 ** 20 && performance.now() - droppedAt >= 5_000;
  while (performance.now() - started < maxMs && !settled()) {
    await sleep(500);
    const rss = rssBytes(pid);
    if (rss < lowest - 2 ** 20) droppedAt = performance.now();
    lowest = Math.min(lowest, rss);
  }
  return { rss: lowest, afterMs: droppedAt - started };
}
