import { spawnSync } from 'node:child_process';
import { parseRedisUrl } from '../redis-client';

/**
 * Whether a suite's Redis requirement is met, decided synchronously while Jest collects
 * tests (a describe callback cannot await). Without Redis a suite is skipped with a warning
 * on a developer machine and fails under `CI=true`.
 */
export interface RedisRequirement {
  readonly ok: boolean;
  /** Why not, when not ok. */
  readonly reason?: string;
}

/** The single Redis the suites use: `TEST_REDIS_URL`, else 127.0.0.1:6379. */
export function testRedisUrl(): string {
  return process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
}

// Runs in a child process: connect, AUTH if needed, PING, and exit 0 on +PONG. The reply
// or the error goes to stdout for the reason.
const PROBE = `
const [host, port, tlsFlag, user, pass, timeout] = process.argv.slice(1);
const net = require('node:net');
const tls = require('node:tls');
const resp = (...args) => '*' + args.length + '\\r\\n' +
  args.map((a) => '$' + Buffer.byteLength(a) + '\\r\\n' + a + '\\r\\n').join('');
const opts = { host, port: Number(port), servername: host };
const socket = tlsFlag === '1' ? tls.connect(opts) : net.connect(opts);
const fail = (why) => { process.stdout.write(why); process.exit(1); };
const timer = setTimeout(() => fail('no answer within ' + timeout + ' ms'), Number(timeout));
let out = '';
socket.on(tlsFlag === '1' ? 'secureConnect' : 'connect', () => {
  let msg = '';
  if (pass) msg += user ? resp('AUTH', user, pass) : resp('AUTH', pass);
  socket.write(msg + resp('PING'));
});
socket.on('data', (d) => {
  out += d.toString();
  if (out.includes('+PONG')) { clearTimeout(timer); socket.destroy(); process.exit(0); }
  const err = out.split('\\r\\n').find((l) => l.startsWith('-'));
  if (err) fail('Redis answered ' + err.slice(1));
});
socket.on('error', (e) => fail(e.code || e.message));
`;

/** Connect to `url` and PING, synchronously, within `timeoutMs`. */
export function probeRedisSync(url: string, timeoutMs = 1_500): RedisRequirement {
  let endpoint;
  try {
    endpoint = parseRedisUrl(url);
  } catch (err) {
    return { ok: false, reason: `bad Redis URL (${(err as Error).message})` };
  }
  const where = `${endpoint.host}:${endpoint.port}`;
  const child = spawnSync(
    process.execPath,
    [
      '-e',
      PROBE,
      endpoint.host,
      String(endpoint.port),
      endpoint.tls ? '1' : '0',
      endpoint.username ?? '',
      endpoint.password ?? '',
      String(timeoutMs),
    ],
    { encoding: 'utf8', timeout: timeoutMs + 2_000 },
  );
  if (child.status === 0) return { ok: true };
  const why = child.stdout?.trim() || child.error?.message || `probe exited ${child.status}`;
  return { ok: false, reason: `Redis at ${where} is not reachable: ${why}` };
}

/** `redis-server` and `redis-cli` can be run (needed to start a throw-away cluster). */
export function probeRedisBinariesSync(): RedisRequirement {
  for (const binary of ['redis-server', 'redis-cli']) {
    const child = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 5_000 });
    if (child.status !== 0) {
      const why = child.error?.message ?? (child.stderr.trim() || `exit ${child.status}`);
      return { ok: false, reason: `${binary} cannot be run: ${why}` };
    }
  }
  return { ok: true };
}

/**
 * A private `redis-server` can be started (the binaries run) and the shared test Redis answers:
 * what suites that restart or kill a Redis of their own need.
 */
export function probeThrowawayRedisSync(): RedisRequirement {
  const binaries = probeRedisBinariesSync();
  return binaries.ok ? probeRedisSync(testRedisUrl()) : binaries;
}

/**
 * `describe` when the requirement is met. Otherwise: under `CI=true` a suite with one failing
 * test that gives the reason; elsewhere `describe.skip` and a console warning.
 */
export function describeWithRedis(
  name: string,
  requirement: RedisRequirement,
  body: () => void,
): void {
  if (requirement.ok) {
    describe(name, body);
    return;
  }
  const reason = requirement.reason ?? 'Redis is not available';
  if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs Redis (CI=true: a missing Redis is a failure, not a skip)', () => {
        throw new Error(reason);
      });
    });
    return;
  }
  console.warn(`Skipping "${name}": ${reason}. With CI=true this fails instead.`);
  describe.skip(name, body);
}
