import { ConfigValidationError, loadAppConfig } from './env.validation';

describe('loadAppConfig', () => {
  it('applies the documented defaults to an empty environment', () => {
    const config = loadAppConfig({});
    expect(config.port).toBe(8000);
    expect(config.store).toEqual({ redis: undefined, failureMode: 'local' });
    expect(config.upstream.apiKey).toBeUndefined();
    expect(config.upstream.baseUrl).toBe('https://api.openai.com/v1');
    expect(config.limits.defaults).toEqual({
      global: { capacity: 10000, refillPerSec: 50 },
      team: { capacity: 5000, refillPerSec: 25 },
      rolegroup: { capacity: 4000, refillPerSec: 20 },
      role: { capacity: 2000, refillPerSec: 10 },
      user: { capacity: 1000, refillPerSec: 5 },
    });
    expect(config.limits.enforceGlobalScope).toBe(false);
    expect(config.limits.tokenAdjustmentThreshold).toBe(0);
  });

  it('parses numbers, booleans and URLs from strings', () => {
    const config = loadAppConfig({
      PORT: '9000',
      CAP_USER: '250.5',
      RATE_USER: '0',
      ENFORCE_GLOBAL_SCOPE: 'yes',
      OPENAI_BASE_URL: 'http://127.0.0.1:8080/v1/',
      REDIS_URL: 'redis://:pw@localhost:6379/2',
    });
    expect(config.port).toBe(9000);
    expect(config.limits.defaults.user).toEqual({ capacity: 250.5, refillPerSec: 0 });
    expect(config.limits.enforceGlobalScope).toBe(true);
    expect(config.upstream.baseUrl).toBe('http://127.0.0.1:8080/v1');
    expect(config.store.redis).toEqual({
      url: 'redis://:pw@localhost:6379/2',
      clusterNodes: [],
      namespace: 'tokenguard',
      commandTimeoutMs: 500,
    });
  });

  it('reads a Redis Cluster, a namespace and the failure mode', () => {
    const config = loadAppConfig({
      REDIS_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2:7000 ,10.0.0.3:7000',
      REDIS_NAMESPACE: 'prod-eu',
      REDIS_COMMAND_TIMEOUT_MS: '250',
      STORE_FAILURE_MODE: 'closed',
    });
    expect(config.store).toEqual({
      redis: {
        url: undefined,
        clusterNodes: ['10.0.0.1:7000', '10.0.0.2:7000', '10.0.0.3:7000'],
        namespace: 'prod-eu',
        commandTimeoutMs: 250,
      },
      failureMode: 'closed',
    });
  });

  it('treats blank values as unset', () => {
    expect(loadAppConfig({ PORT: '', CAP_TEAM: '  ' }).port).toBe(8000);
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['CAP_USER', '-1'],
    ['RATE_TEAM', 'fast'],
    ['ENFORCE_GLOBAL_SCOPE', 'maybe'],
    ['OPENAI_BASE_URL', 'not a url'],
    ['REDIS_URL', 'http://localhost'],
    ['LOG_LEVEL', 'loud'],
    ['DEFAULT_MAX_OUTPUT_TOKENS', '0'],
    ['STORE_FAILURE_MODE', 'sometimes'],
    ['REDIS_NAMESPACE', '{hot}'],
    ['REDIS_CLUSTER_NODES', 'a:1,,b:2'],
  ])('rejects %s=%s with a message naming the variable', (name, value) => {
    expect(() => loadAppConfig({ [name]: value })).toThrow(ConfigValidationError);
    expect(() => loadAppConfig({ [name]: value })).toThrow(new RegExp(`^\\s+- ${name}:`, 'm'));
  });

  it('lists every bad variable at once and never echoes a secret', () => {
    let error: unknown;
    try {
      loadAppConfig({ PORT: 'x', CAP_USER: 'y', REDIS_URL: 'http://:hunter2@cache:6379' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    const { problems, message } = error as ConfigValidationError;
    expect(problems).toHaveLength(3);
    expect(message).toMatch(/REDIS_URL/);
    expect(message).not.toMatch(/hunter2/);
  });

  it('refuses to run in production with an open admin API', () => {
    expect(() => loadAppConfig({ NODE_ENV: 'production' })).toThrow(/ADMIN_TOKEN: is required/);
    expect(loadAppConfig({ NODE_ENV: 'production', ADMIN_TOKEN: 'x'.repeat(32) }).adminToken).toBe(
      'x'.repeat(32),
    );
    expect(() => loadAppConfig({ ADMIN_TOKEN: 'short' })).toThrow(/ADMIN_TOKEN: must be at least/);
    expect(() => loadAppConfig({ ADMIN_TOKEN: 'short' })).not.toThrow(/short/);
  });

  it('reads the metrics settings', () => {
    expect(loadAppConfig({}).metrics).toEqual({
      enabled: true,
      bucketScopes: ['global', 'team'],
      maxBucketSeries: 100,
    });
    expect(
      loadAppConfig({
        ENABLE_METRICS: 'false',
        METRICS_BUCKET_SCOPES: 'team, rolegroup,team',
        METRICS_MAX_BUCKET_SERIES: '0',
      }).metrics,
    ).toEqual({ enabled: false, bucketScopes: ['team', 'rolegroup'], maxBucketSeries: 0 });
    for (const [name, value] of [
      ['ENABLE_METRICS', 'sometimes'],
      ['METRICS_BUCKET_SCOPES', 'team,users'],
      ['METRICS_BUCKET_SCOPES', 'team,,user'],
      ['METRICS_MAX_BUCKET_SERIES', '-1'],
      ['METRICS_MAX_BUCKET_SERIES', '100000'],
    ]) {
      expect(() => loadAppConfig({ [name]: value })).toThrow(new RegExp(`^\\s+- ${name}:`, 'm'));
    }
  });

  it('reads the upstream limit sync settings', () => {
    expect(loadAppConfig({}).sync).toEqual({
      enforceUpstreamLimits: true,
      backgroundSync: true,
      intervalMs: 300_000,
      probeModel: undefined,
      staleAfterMs: 900_000,
    });
    expect(
      loadAppConfig({
        ENFORCE_UPSTREAM_LIMITS: 'false',
        ENABLE_BACKGROUND_SYNC: 'off',
        SYNC_INTERVAL_SECONDS: '60',
        SYNC_PROBE_MODEL: ' ft:gpt-4o-mini:org::x ',
      }).sync,
    ).toEqual({
      enforceUpstreamLimits: false,
      backgroundSync: false,
      intervalMs: 60_000,
      probeModel: 'ft:gpt-4o-mini:org::x',
      // Three intervals unless set.
      staleAfterMs: 180_000,
    });
    expect(loadAppConfig({ SYNC_STALE_AFTER_SECONDS: '45' }).sync.staleAfterMs).toBe(45_000);
    for (const [name, value] of [
      ['ENFORCE_UPSTREAM_LIMITS', 'maybe'],
      ['SYNC_INTERVAL_SECONDS', '0'],
      ['SYNC_INTERVAL_SECONDS', '1.5'],
      ['SYNC_PROBE_MODEL', 'gpt 4o'],
      ['SYNC_STALE_AFTER_SECONDS', '-1'],
    ]) {
      expect(() => loadAppConfig({ [name]: value })).toThrow(new RegExp(`^\\s+- ${name}:`, 'm'));
    }
  });

  it('reads the shutdown grace period', () => {
    expect(loadAppConfig({}).shutdownGraceMs).toBe(10_000);
    expect(loadAppConfig({ SHUTDOWN_GRACE_MS: '0' }).shutdownGraceMs).toBe(0);
    expect(loadAppConfig({ SHUTDOWN_GRACE_MS: ' 2500 ' }).shutdownGraceMs).toBe(2500);
    for (const value of ['-1', '1.5', 'soon', '600001']) {
      expect(() => loadAppConfig({ SHUTDOWN_GRACE_MS: value })).toThrow(
        /^\s+- SHUTDOWN_GRACE_MS:/m,
      );
    }
  });

  it('reads the deadlines for receiving requests', () => {
    expect(loadAppConfig({}).http).toEqual({
      requestTimeoutMs: 30_000,
      headersTimeoutMs: 10_000,
      keepAliveTimeoutMs: 72_000,
    });
    expect(
      loadAppConfig({
        REQUEST_TIMEOUT_MS: '60000',
        HEADERS_TIMEOUT_MS: '5000',
        KEEP_ALIVE_TIMEOUT_MS: '65000',
      }).http,
    ).toEqual({ requestTimeoutMs: 60_000, headersTimeoutMs: 5000, keepAliveTimeoutMs: 65_000 });
    // The headers default never outlasts a shorter request deadline, which includes them.
    expect(loadAppConfig({ REQUEST_TIMEOUT_MS: '2000' }).http.headersTimeoutMs).toBe(2000);
    // 0: no request deadline (a proxy in front enforces one); the headers keep theirs.
    expect(loadAppConfig({ REQUEST_TIMEOUT_MS: '0' }).http).toMatchObject({
      requestTimeoutMs: 0,
      headersTimeoutMs: 10_000,
    });
    expect(() => loadAppConfig({ REQUEST_TIMEOUT_MS: '1000', HEADERS_TIMEOUT_MS: '2000' })).toThrow(
      /^\s+- HEADERS_TIMEOUT_MS: must not exceed REQUEST_TIMEOUT_MS \(1000\) \(got 2000\)/m,
    );
    expect(() => loadAppConfig({ HEADERS_TIMEOUT_MS: '40000' })).toThrow(
      /^\s+- HEADERS_TIMEOUT_MS: must not exceed REQUEST_TIMEOUT_MS \(30000\)/m,
    );
    for (const [name, value] of [
      ['REQUEST_TIMEOUT_MS', '-1'],
      ['REQUEST_TIMEOUT_MS', 'soon'],
      ['HEADERS_TIMEOUT_MS', '0'],
      ['KEEP_ALIVE_TIMEOUT_MS', '0'],
      ['KEEP_ALIVE_TIMEOUT_MS', '1.5'],
    ]) {
      expect(() => loadAppConfig({ [name]: value })).toThrow(new RegExp(`^\\s+- ${name}:`, 'm'));
    }
  });

  it('returns a frozen object', () => {
    const config = loadAppConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.limits.defaults.user)).toBe(true);
  });
});
