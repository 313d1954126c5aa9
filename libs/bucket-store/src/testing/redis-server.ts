import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LOCALHOST,
  freePorts,
  killRedisServer,
  spawnRedisServer,
  stopRedisServer,
} from './redis-process';

/** A throw-away single `redis-server` that a test may stop and start again. */
export interface RedisServerHandle {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Stop the server (its data is lost: no persistence). */
  pause(): Promise<void>;
  /** Kill it with SIGKILL, like a crash (its data is lost); `resume()` starts it again. */
  kill(): Promise<void>;
  /** Start it again on the same port. */
  resume(): Promise<void>;
  /** Stop it for good and delete its directory. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startRedisServer(timeoutMs = 15_000): Promise<RedisServerHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'tokenguard-redis-'));
  const [port] = await freePorts(1);
  let running = false;
  let stopped = false;
  const resume = async () => {
    if (running) return;
    running = true;
    await spawnRedisServer(dir, port, Date.now() + timeoutMs);
  };
  const pause = async () => {
    if (!running) return;
    running = false;
    await stopRedisServer(dir, port);
  };
  try {
    await resume();
  } catch (err) {
    await pause();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const kill = async () => {
    if (!running) return;
    running = false;
    await killRedisServer(dir, port);
  };
  return {
    port,
    url: `redis://${LOCALHOST}:${port}`,
    pause,
    kill,
    resume,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await pause();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
