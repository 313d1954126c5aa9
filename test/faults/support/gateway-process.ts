import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { freePorts, sleep } from '../../../libs/bucket-store/src/testing/redis-process';
import { Scrape } from '../../support/metrics';
import { GATEWAY_MAIN } from './ensure-build';

/** The fields of the gateway's `request completed` log line that the ledger reads. */
export interface RequestLine {
  readonly requestId: string;
  readonly status: number;
  readonly outcome?: string;
  readonly estimatedTokens?: number;
  readonly chargedTokens?: number;
  readonly settlement?: string;
}

export interface Memory {
  readonly rss: number;
  readonly heapUsed: number;
}

export interface GatewayProcess {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  /** `request completed` lines of charged routes, by request id. */
  readonly lines: ReadonlyMap<string, RequestLine>;
  /** Log lines at error level or above, newest last (bounded). */
  readonly errors: readonly string[];
  /** Null while running. */
  exitCode(): number | null;
  /** Whether the process runs and answers `GET /health/live`. */
  alive(): Promise<boolean>;
  scrape(): Promise<Scrape>;
  /**
   * RSS and V8 heap in use as the gateway reports them (`tokenguard_process_resident_memory_bytes`,
   * `tokenguard_nodejs_heap_size_used_bytes`), read after a full garbage collection so that
   * garbage not yet collected is not taken for a leak.
   */
  memory(): Promise<Memory>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** Last lines of stderr and unparsed stdout, for failure messages. */
  tail(): string;
}

/**
 * Test-only: `kill -USR2` makes the gateway run a full GC (twice: the first may only queue
 * finalizers), so memory is compared collected to collected. Nothing in the gateway changes.
 */
const GC_ON_SIGNAL = [
  '--expose-gc',
  '--import',
  'data:text/javascript,process.on("SIGUSR2",()=>{globalThis.gc();globalThis.gc()})',
];

const CHARGED_ROUTES = new Set(['chat.completions', 'completions', 'embeddings', 'responses']);

/**
 * The built gateway (`node dist/.../main.js`) in a process of its own, configured only through
 * its environment, as production runs it. Its JSON request log is read back line by line: the
 * final charge of every request, by the request id the test chose.
 */
export async function spawnGateway(
  name: string,
  env: Record<string, string>,
): Promise<GatewayProcess> {
  const [port] = await freePorts(1);
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(process.execPath, [...GC_ON_SIGNAL, GATEWAY_MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      // The limit sync learns the mock's generous headers; it has its own suites.
      ENABLE_BACKGROUND_SYNC: 'false',
      ENFORCE_UPSTREAM_LIMITS: 'false',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = new Map<string, RequestLine>();
  const errors: string[] = [];
  let tail = '';
  const keepTail = (text: string) => {
    tail = (tail + text).slice(-6000);
  };
  child.stderr?.on('data', (chunk: Buffer) => keepTail(chunk.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      keepTail(`${line}\n`);
      return;
    }
    if (typeof entry.level === 'number' && entry.level >= 50) {
      errors.push(line);
      if (errors.length > 200) errors.shift();
    }
    if (entry.msg === 'request completed' && CHARGED_ROUTES.has(String(entry.route))) {
      // Only what the ledger reads: a long soak keeps hundreds of thousands of these.
      const line: RequestLine = {
        requestId: String(entry.requestId),
        status: Number(entry.status),
        outcome: entry.outcome as string | undefined,
        estimatedTokens: entry.estimatedTokens as number | undefined,
        chargedTokens: entry.chargedTokens as number | undefined,
        settlement: entry.settlement as string | undefined,
      };
      lines.set(line.requestId, line);
    }
  });

  const handle: GatewayProcess = {
    name,
    url,
    get pid() {
      return child.pid ?? -1;
    },
    lines,
    errors,
    exitCode: () => child.exitCode ?? (child.signalCode === null ? null : -1),
    alive: async () => {
      if (handle.exitCode() !== null) return false;
      try {
        const res = await fetch(`${url}/health/live`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return res.status === 200;
      } catch {
        return false;
      }
    },
    scrape: async () => {
      const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
      return new Scrape(await res.text());
    },
    memory: async () => {
      child.kill('SIGUSR2');
      await sleep(300);
      const scrape = await handle.scrape();
      return {
        rss: scrape.value('tokenguard_process_resident_memory_bytes'),
        heapUsed: scrape.value('tokenguard_nodejs_heap_size_used_bytes'),
      };
    },
    stop: async (graceMs = 10_000) => {
      if (handle.exitCode() !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    tail: () => tail,
  };

  const deadline = Date.now() + 30_000;
  while (!(await handle.alive())) {
    if (handle.exitCode() !== null) throw new Error(`${name} exited at boot:\n${tail}`);
    if (Date.now() > deadline) {
      await handle.stop(1000);
      throw new Error(`${name} did not come up:\n${tail}`);
    }
    await sleep(100);
  }
  return handle;
}
