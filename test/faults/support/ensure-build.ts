import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');

export const GATEWAY_MAIN = join(ROOT, 'dist/apps/gateway/apps/gateway/src/main.js');
export const MOCK_MAIN = join(ROOT, 'dist/apps/mock-openai/apps/mock-openai/src/main.js');

/** Newest modification time of the sources `nest build` compiles (specs and testing excluded). */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'testing' && entry.name !== 'node_modules') {
        newest = Math.max(newest, newestSource(path));
      }
    } else if (entry.name.endsWith('.ts') && !/\.(spec|e2e-spec)\.ts$/.test(entry.name)) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/**
 * Jest global setup of the fault suite: the gateway under test is the built one (a separate
 * process, as in production). A missing dist/ is built; a stale one is rebuilt only with
 * FAULTS_BUILD=1 (a rebuild deletes dist/ under anything else running from it), else the run
 * says loudly that it tests older code.
 */
export default function ensureBuild(): void {
  const present = [GATEWAY_MAIN, MOCK_MAIN].every(existsSync);
  const built = present ? Math.min(statSync(GATEWAY_MAIN).mtimeMs, statSync(MOCK_MAIN).mtimeMs) : 0;
  const sources = Math.max(newestSource(join(ROOT, 'apps')), newestSource(join(ROOT, 'libs')));
  if (present && built >= sources) return;
  if (present && process.env.FAULTS_BUILD !== '1') {
    process.stdout.write(
      '\nfault suite: WARNING dist/ is older than the sources; testing the old build ' +
        '(npm run build, or FAULTS_BUILD=1 to rebuild first)\n',
    );
    return;
  }
  process.stdout.write('\nfault suite: building the gateway and the mock (npm run build)\n');
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
}
