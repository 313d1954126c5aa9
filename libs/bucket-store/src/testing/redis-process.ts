import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

/** Helpers to run throw-away local `redis-server` processes for tests. */

export const run = promisify(execFile);

export const LOCALHOST = '127.0.0.1';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, LOCALHOST, () => server.close(() => resolve(true)));
  });
}

/**
 * Ports that are free now, picked at random in 20000-39999 to keep parallel runs apart. With
 * `busOffset`, port + busOffset must be free too (Redis Cluster's bus port is port + 10000).
 */
export async function freePorts(count: number, busOffset?: number): Promise<number[]> {
  const ports: number[] = [];
  for (let attempt = 0; ports.length < count && attempt < 500; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if (ports.includes(port)) continue;
    if (!(await portIsFree(port))) continue;
    if (busOffset !== undefined && !(await portIsFree(port + busOffset))) continue;
    ports.push(port);
  }
  if (ports.length < count) throw new Error('no free ports for redis-server');
  return ports;
}

/** Poll `probe` every 100 ms until it returns a value, or fail at `deadline`. */
export async function until<T>(
  what: string,
  deadline: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  const why = last instanceof Error ? `: ${last.message}` : '';
  throw new Error(`timed out waiting for ${what}${why}`);
}

/** A short-lived connection to one local node, closed after `body`. */
export async function withNode<T>(port: number, body: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({
    host: LOCALHOST,
    port,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: 1_000,
    enableOfflineQueue: false,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await body(redis);
  } finally {
    redis.disconnect();
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const pidFile = (dir: string, port: number) => join(dir, `redis-${port}.pid`);

/**
 * Start a daemonized `redis-server` on `port` with its files in `dir` (no persistence) and
 * wait until it answers PING.
 */
export async function spawnRedisServer(
  dir: string,
  port: number,
  deadline: number,
  extraArgs: readonly string[] = [],
): Promise<void> {
  // prettier-ignore
  await run('redis-server', [
    '--port', String(port),
    '--bind', LOCALHOST,
    '--dir', dir,
    '--save', '',
    '--appendonly', 'no',
    '--daemonize', 'yes',
    '--pidfile', pidFile(dir, port),
    '--logfile', join(dir, `redis-${port}.log`),
    ...extraArgs,
  ]);
  await until(`redis-server on port ${port}`, deadline, () =>
    withNode(port, async (r) => ((await r.ping()) === 'PONG' ? true : undefined)),
  );
}

/**
 * Stop the server started by spawnRedisServer on `port`: SHUTDOWN NOSAVE, then wait for its
 * pid (from its pid file) to exit, killing that pid if it lingers.
 */
export async function stopRedisServer(dir: string, port: number): Promise<void> {
  let pid: number | undefined;
  try {
    pid = Number((await readFile(pidFile(dir, port), 'utf8')).trim());
  } catch {
    pid = undefined;
  }
  try {
    await run('redis-cli', ['-h', LOCALHOST, '-p', String(port), 'shutdown', 'nosave'], {
      timeout: 5_000,
    });
  } catch {
    // SHUTDOWN closes the connection without a reply; the pid check below decides.
  }
  if (pid === undefined || !Number.isInteger(pid) || pid <= 0) return;
  const waitUntil = Date.now() + 5_000;
  while (pidAlive(pid) && Date.now() < waitUntil) await sleep(50);
  if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
}

/**
 * Kill the server started by spawnRedisServer on `port` with SIGKILL, as a crash would: no
 * SHUTDOWN, clients see their connections reset. Resolves once the pid has exited.
 */
export async function killRedisServer(dir: string, port: number): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(pidFile(dir, port), 'utf8')).trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid)) return;
  process.kill(pid, 'SIGKILL');
  const waitUntil = Date.now() + 5_000;
  while (pidAlive(pid) && Date.now() < waitUntil) await sleep(20);
}
