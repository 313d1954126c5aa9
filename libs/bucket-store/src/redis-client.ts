import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

/** A single Redis or a Redis Cluster; RedisBucketStore runs on either. */
export type RedisClient = Redis | Cluster;

export interface RedisClientOptions {
  /**
   * `redis://[[user]:password@]host[:port][/db]`, or `rediss://...` for TLS. Ignored when
   * `clusterNodes` is given.
   */
  readonly url?: string;
  /**
   * Seed nodes of a Redis Cluster, each `host:port` or a `redis://` / `rediss://` URL (the
   * first URL's credentials and TLS apply to every node). A cluster has only database 0.
   */
  readonly clusterNodes?: readonly string[];
  /** Overrides the URL's password. */
  readonly password?: string;
  /** Overrides the URL's user name (Redis 6 ACL). */
  readonly username?: string;
  /** Overrides the URL's database index (single Redis only). */
  readonly db?: number;
  /** TLS on or off (or socket options), overriding the URL scheme. */
  readonly tls?: boolean | ConnectionOptions;
  /** A command without a reply after this long fails. Default 500 ms. */
  readonly commandTimeoutMs?: number;
  /** A connection attempt gives up after this long. Default 2000 ms. */
  readonly connectTimeoutMs?: number;
  /** Reconnect back-off grows to at most this. Default 1000 ms. */
  readonly maxReconnectDelayMs?: number;
  /** CLIENT SETNAME, to find the gateway's connections in CLIENT LIST. */
  readonly connectionName?: string;
  /** Do not connect until the first command or `connect()`. Default false. */
  readonly lazyConnect?: boolean;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 500;
const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;
const DEFAULT_MAX_RECONNECT_DELAY_MS = 1_000;

interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  readonly db?: number;
  readonly tls: boolean;
}

/**
 * Parse `redis://` / `rediss://` URLs and bare `host:port`. Credentials are percent-decoded;
 * the path is the database index.
 */
export function parseRedisUrl(url: string): Endpoint {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `redis://${url}`;
  let parsed: URL;
  try {
    parsed = new URL(withScheme);
  } catch {
    throw new RangeError('Redis URL is not a valid URL');
  }
  const scheme = parsed.protocol.toLowerCase();
  if (scheme !== 'redis:' && scheme !== 'rediss:') {
    throw new RangeError(`Redis URL must use redis:// or rediss://, got ${scheme}//`);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new RangeError('Redis URL has no host');
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  let db: number | undefined;
  const path = parsed.pathname.replace(/^\//, '');
  if (path !== '') {
    db = Number(path);
    if (!/^\d+$/.test(path) || !Number.isSafeInteger(db)) {
      throw new RangeError(`Redis URL path must be a database index, got "/${path}"`);
    }
  }
  return {
    host,
    port,
    username: parsed.username === '' ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
    db,
    tls: scheme === 'rediss:',
  };
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0) {
    throw new RangeError(`${name} must be a positive number of milliseconds, got ${v}`);
  }
  return v;
}

function tlsOption(
  explicit: boolean | ConnectionOptions | undefined,
  fromUrl: boolean,
): ConnectionOptions | undefined {
  if (explicit === undefined) return fromUrl ? {} : undefined;
  if (explicit === false) return undefined;
  return explicit === true ? {} : explicit;
}

/**
 * An ioredis client tuned for a rate limiter in the request path: errors surface within
 * `commandTimeoutMs` instead of piling up.
 *
 * - No offline queue: while disconnected a command fails at once. A queued reserve that ran
 *   after its caller had given up would charge tokens for a request that was never served.
 * - No automatic re-send of commands that were in flight when a connection dropped, for the
 *   same reason; their callers get an error.
 * - Reconnects forever with a back-off capped at `maxReconnectDelayMs`, so the store recovers
 *   by itself within about a second of Redis returning.
 *
 * Because nothing is queued, commands sent before the first connection is ready fail too;
 * await `waitForRedisReady()` at start-up when that matters.
 *
 * Cluster: every key of one store namespace carries the same hash tag, so the whole namespace
 * lives in one slot and one master serves all of its traffic (its replicas only take over on
 * failover). A cluster therefore adds failover and room for other data, not throughput for
 * one namespace. To spread load, run several namespaces (e.g. one per group of teams, chosen
 * by a stable hash of the team id) whose slots land on different masters; a request must then
 * keep all of its scopes, global included, in one namespace, which means a per-shard global
 * budget. Not built: one namespace per deployment is what the gateway uses today.
 */
export function createRedisClient(options: RedisClientOptions): RedisClient {
  const commandTimeout = positive(
    'commandTimeoutMs',
    options.commandTimeoutMs,
    DEFAULT_COMMAND_TIMEOUT_MS,
  );
  const connectTimeout = positive(
    'connectTimeoutMs',
    options.connectTimeoutMs,
    DEFAULT_CONNECT_TIMEOUT_MS,
  );
  const maxDelay = positive(
    'maxReconnectDelayMs',
    options.maxReconnectDelayMs,
    DEFAULT_MAX_RECONNECT_DELAY_MS,
  );
  const backoff = (times: number) => Math.min(50 * 2 ** Math.min(times, 10), maxDelay);

  const lazyConnect = options.lazyConnect ?? false;
  // lazyConnect stays out of these: in a cluster's per-node options it made the client's
  // start-up race (ready check failing with "Connection is closed", then a reconnect).
  const common = {
    commandTimeout,
    connectTimeout,
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    connectionName: options.connectionName,
  } satisfies RedisOptions;

  const seeds = options.clusterNodes;
  if (seeds !== undefined && seeds.length > 0) {
    const endpoints = seeds.map(parseRedisUrl);
    const first = endpoints[0];
    if ((options.db ?? first.db ?? 0) !== 0) {
      throw new RangeError('Redis Cluster has only database 0');
    }
    const tls = tlsOption(options.tls, first.tls);
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      clusterRetryStrategy: backoff,
      lazyConnect,
      redisOptions: {
        ...common,
        username: options.username ?? first.username,
        password: options.password ?? first.password,
        tls,
      },
      slotsRefreshTimeout: connectTimeout,
    };
    return new Cluster(
      endpoints.map((e) => ({ host: e.host, port: e.port })),
      clusterOptions,
    );
  }

  const endpoint = parseRedisUrl(options.url ?? 'redis://127.0.0.1:6379');
  return new Redis({
    ...common,
    lazyConnect,
    host: endpoint.host,
    port: endpoint.port,
    username: options.username ?? endpoint.username,
    password: options.password ?? endpoint.password,
    db: options.db ?? endpoint.db ?? 0,
    tls: tlsOption(options.tls, endpoint.tls),
    enableOfflineQueue: false,
    retryStrategy: backoff,
  });
}

/**
 * Resolve once the client can take commands; reject after `timeoutMs` or if it gives up.
 * Starts the connection of a lazy client.
 */
export async function waitForRedisReady(client: RedisClient, timeoutMs = 5_000): Promise<void> {
  if (client.status === 'ready') return;
  if (client.status === 'end') throw new Error('Redis client is closed');
  await new Promise<void>((resolve, reject) => {
    let lastError: Error | undefined;
    const onReady = () => done();
    const onError = (err: Error) => {
      lastError = err;
    };
    const onEnd = () => done(new Error('Redis client closed before it was ready'));
    const timer = setTimeout(() => {
      const why = lastError === undefined ? '' : `: ${lastError.message}`;
      done(new Error(`Redis not ready after ${timeoutMs} ms${why}`));
    }, timeoutMs);
    function done(err?: Error) {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onEnd);
      if (err === undefined) resolve();
      else reject(err);
    }
    client.on('ready', onReady);
    client.on('error', onError);
    client.on('end', onEnd);
    if (client.status === 'wait') client.connect().catch(onError);
  });
}
