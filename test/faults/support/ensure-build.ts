import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GATEWAY_MAIN, MOCK_MAIN, newestSource, ROOT } from '../../support/build-freshness';

export { GATEWAY_MAIN, MOCK_MAIN } from '../../support/build-freshness';

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
