import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LOCALHOST,
  freePorts,
  run,
  spawnRedisServer,
  stopRedisServer,
  until,
  withNode,
} from './redis-process';

/** A throw-away Redis Cluster of local `redis-server` processes. */
export interface RedisClusterHandle {
  /** `127.0.0.1:<port>` of every master. */
  readonly nodes: readonly string[];
  readonly ports: readonly number[];
  /** Shut every node down and delete the temporary directory. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartRedisClusterOptions {
  /** Masters (no replicas). Default 3, the smallest cluster `redis-cli --cluster` creates. */
  readonly size?: number;
  /** Give up after this long. Default 30 s. */
  readonly timeoutMs?: number;
}

// Redis Cluster also listens on port + 10000 (the cluster bus).
const BUS_OFFSET = 10_000;

/**
 * Start `size` cluster-enabled `redis-server`s (daemonized, no persistence, files in a fresh
 * temporary directory), join them with `redis-cli --cluster create`, and wait until every
 * node reports `cluster_state:ok` with all slots and all nodes known. On any failure,
 * whatever was started is stopped again.
 */
export async function startRedisCluster(
  options: StartRedisClusterOptions = {},
): Promise<RedisClusterHandle> {
  const size = options.size ?? 3;
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const dir = await mkdtemp(join(tmpdir(), 'tokenguard-redis-cluster-'));
  const started: number[] = [];

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const port of started) await stopRedisServer(dir, port);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const ports = await freePorts(size, BUS_OFFSET);
    for (const port of ports) {
      started.push(port);
      // prettier-ignore
      await spawnRedisServer(dir, port, deadline, [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', '5000',
      ]);
    }
    const nodes = ports.map((port) => `${LOCALHOST}:${port}`);
    await run(
      'redis-cli',
      ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: Math.max(1_000, deadline - Date.now()) },
    );
    for (const port of ports) {
      await until(`cluster_state:ok on port ${port}`, deadline, () =>
        withNode(port, async (r) => {
          const info = String(await r.call('CLUSTER', 'INFO'));
          const ok =
            /cluster_state:ok/.test(info) &&
            /cluster_slots_ok:16384/.test(info) &&
            info.includes(`cluster_known_nodes:${size}`);
          return ok ? true : undefined;
        }),
      );
    }
    return { nodes, ports, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
