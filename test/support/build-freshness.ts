import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The repository root, and what `npm run build` produces there. */
export const ROOT = join(__dirname, '..', '..');
export const GATEWAY_MAIN = join(ROOT, 'dist/apps/gateway/apps/gateway/src/main.js');
export const MOCK_MAIN = join(ROOT, 'dist/apps/mock-openai/apps/mock-openai/src/main.js');

/** Newest modification time of the sources `nest build` compiles (specs and testing excluded). */
export function newestSource(dir: string): number {
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
