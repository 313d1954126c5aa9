import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';

export interface ToolRequirement {
  readonly ok: boolean;
  readonly reason?: string;
}

/** Whether `binary --version` runs (checked synchronously while Jest collects tests). */
export function probeTool(binary: string): ToolRequirement {
  const child = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (child.status === 0) return { ok: true };
  const why = child.error?.message ?? (child.stderr.trim() || `exit ${child.status}`);
  return {
    ok: false,
    reason: `${binary} cannot be run (${why}); install Debian's prometheus package`,
  };
}

export const allOf = (...requirements: ToolRequirement[]): ToolRequirement =>
  requirements.find((r) => !r.ok) ?? { ok: true };

/**
 * `describe` when the requirement is met. Otherwise: under `CI=true` one failing test giving
 * the reason; elsewhere `describe.skip` with a printed warning.
 */
export function describeWithTool(
  name: string,
  requirement: ToolRequirement,
  body: () => void,
): void {
  if (requirement.ok) {
    describe(name, body);
    return;
  }
  const reason = requirement.reason ?? 'a required tool is missing';
  if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs its tools (CI=true: a missing tool is a failure, not a skip)', () => {
        throw new Error(reason);
      });
    });
    return;
  }
  console.warn(`Skipping "${name}": ${reason}. With CI=true this fails instead.`);
  describe.skip(name, body);
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `probe` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
