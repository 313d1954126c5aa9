import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { Cluster, Redis } from 'ioredis';
import { createRedisClient, parseRedisUrl, waitForRedisReady } from './redis-client';
import { describeWithRedis, probeRedisSync, testRedisUrl } from './testing/redis-availability';
import { startSilentRedis } from './testing/silent-redis';

describe('parseRedisUrl', () => {
  it('reads host, port, credentials, database and TLS', () => {
    expect(parseRedisUrl('redis://localhost')).toEqual({
      host: 'localhost',
      port: 6379,
      username: undefined,
      password: undefined,
      db: undefined,
      tls: false,
    });
    expect(parseRedisUrl('rediss://app:s%40cret@cache.internal:6380/3')).toEqual({
      host: 'cache.internal',
      port: 6380,
      username: 'app',
      password: 's@cret',
      db: 3,
      tls: true,
    });
    expect(parseRedisUrl('redis://:pw@127.0.0.1:7000/0')).toMatchObject({
      username: undefined,
      password: 'pw',
      db: 0,
    });
    expect(parseRedisUrl('10.0.0.5:7001')).toMatchObject({ host: '10.0.0.5', port: 7001 });
    expect(parseRedisUrl('redis://[::1]:6379')).toMatchObject({ host: '::1', port: 6379 });
  });

  it.each(['http://localhost', 'redis://', 'redis://host/abc', 'redis://host/1/2', '::::'])(
    'rejects %p',
    (url) => {
      expect(() => parseRedisUrl(url)).toThrow(RangeError);
    },
  );
});

describe('createRedisClient', () => {
  const clients: (Redis | Cluster)[] = [];
  const make = (...args: Parameters<typeof createRedisClient>) => {
    const client = createRedisClient(...args);
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  };

  afterEach(() => {
    for (const client of clients.splice(0)) client.disconnect();
  });

  it('configures a single Redis to fail fast instead of queueing', () => {
    const client = make({
      url: 'rediss://u:p@cache:6380/4',
      lazyConnect: true,
      commandTimeoutMs: 250,
    });
    expect(client).toBeInstanceOf(Redis);
    expect(client.options).toMatchObject({
      host: 'cache',
      port: 6380,
      username: 'u',
      password: 'p',
      db: 4,
      tls: {},
      commandTimeout: 250,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 1,
    });
  });

  it('lets explicit options win over the URL', () => {
    const client = make({
      url: 'rediss://:p@cache/4',
      password: 'other',
      db: 1,
      tls: false,
      lazyConnect: true,
    });
    expect(client.options).toMatchObject({ password: 'other', db: 1, tls: undefined });
  });

  it('builds a Cluster client from seed nodes', () => {
    const client = make({
      clusterNodes: ['redis://:pw@10.0.0.1:7000', '10.0.0.2:7001'],
      lazyConnect: true,
    });
    expect(client).toBeInstanceOf(Cluster);
    const cluster = client as Cluster;
    expect(cluster.options.enableOfflineQueue).toBe(false);
    expect(cluster.options.redisOptions).toMatchObject({
      password: 'pw',
      commandTimeout: 500,
      autoResendUnfulfilledCommands: false,
    });
    expect((cluster as unknown as { startupNodes: unknown }).startupNodes).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
    ]);
  });

  it('refuses a database other than 0 on a cluster, and bad timeouts', () => {
    expect(() => createRedisClient({ clusterNodes: ['h:1'], db: 2, lazyConnect: true })).toThrow(
      /database 0/,
    );
    expect(() => createRedisClient({ url: 'redis://h', commandTimeoutMs: 0 })).toThrow(RangeError);
  });

  it('fails a command at once while the connection is not ready', async () => {
    // Accepts the connection and never says anything, so the client never becomes ready.
    const sockets: Socket[] = [];
    const server = createServer((socket) => sockets.push(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    try {
      const client = make({ url: `redis://127.0.0.1:${port}` });
      const started = Date.now();
      await expect(client.get('x')).rejects.toThrow(/enableOfflineQueue/);
      expect(Date.now() - started).toBeLessThan(200);
      await expect(waitForRedisReady(client, 300)).rejects.toThrow(/not ready after 300 ms/);
    } finally {
      for (const client of clients.splice(0)) client.disconnect();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('times a command out when the server does not answer', async () => {
    const server = await startSilentRedis();
    try {
      const client = make({ url: server.url, commandTimeoutMs: 150 });
      await waitForRedisReady(client, 2_000);
      const started = Date.now();
      await expect(client.get('x')).rejects.toThrow(/timed out/);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(server.unanswered).toContain('get');
    } finally {
      for (const client of clients.splice(0)) client.disconnect();
      await server.stop();
    }
  });
});

const url = testRedisUrl();
describeWithRedis('createRedisClient against Redis', probeRedisSync(url), () => {
  it('connects, selects the database from the URL and answers', async () => {
    const client = createRedisClient({ url: `${url.replace(/\/\d+$/, '')}/5` });
    client.on('error', () => undefined);
    try {
      await waitForRedisReady(client);
      expect(await client.ping()).toBe('PONG');
      const info = await client.client('INFO');
      expect(String(info)).toMatch(/ db=5 /);
    } finally {
      await client.quit();
    }
  });
});
