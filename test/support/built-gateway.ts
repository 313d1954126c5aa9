import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { GATEWAY_MAIN, newestSource, ROOT } from './build-freshness';

/**
 * The built gateway is what runs (as `npm run start:prod` runs it): rebuilt first when dist/
 * is missing or older than the sources, rather than silently testing old code.
 */
export function ensureGatewayBuilt(): void {
  const built = existsSync(GATEWAY_MAIN) ? statSync(GATEWAY_MAIN).mtimeMs : 0;
  const sources = Math.max(
    newestSource(join(ROOT, 'apps/gateway/src')),
    newestSource(join(ROOT, 'libs')),
  );
  if (built >= sources) return;
  execFileSync('npx', ['nest', 'build', 'gateway'], { cwd: ROOT, stdio: 'ignore' });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** performance.now() at exit. */
  readonly at: number;
}

export interface GatewayProcess {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Every log line so far (JSON from pino, or plain text). */
  readonly lines: readonly string[];
  /** Resolves with the first log line (from now on or already seen) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  readonly exited: Promise<ProcessExit>;
  /** SIGKILL if still running (cleanup after a failed test). */
  kill(): Promise<void>;
}

/** `node dist/.../main.js` on a free port, configured through its environment only. */
export async function startBuiltGateway(env: Record<string, string>): Promise<GatewayProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [GATEWAY_MAIN], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const watchers = new Set<(line: string) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      for (const watch of watchers) watch(line);
    });
  }
  const exited = new Promise<ProcessExit>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  const url = `http://127.0.0.1:${port}`;
  const handle: GatewayProcess = {
    url,
    port,
    child,
    lines,
    exited,
    waitForLine: (pattern, timeoutMs = 10_000) => {
      const seen = lines.find((line) => pattern.test(line));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          watchers.delete(watch);
          reject(new Error(`no log line matched ${String(pattern)}:\n${lines.join('\n')}`));
        }, timeoutMs);
        const watch = (line: string) => {
          if (!pattern.test(line)) return;
          clearTimeout(timer);
          watchers.delete(watch);
          resolve(line);
        };
        watchers.add(watch);
      });
    },
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
  await waitUntilReady(handle);
  return handle;
}

async function waitUntilReady(gateway: GatewayProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (gateway.child.exitCode !== null) {
      throw new Error(`the gateway exited at boot:\n${gateway.lines.join('\n')}`);
    }
    try {
      const res = await fetch(`${gateway.url}/health/ready`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await gateway.kill();
      throw new Error(`the gateway did not become ready:\n${gateway.lines.join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
