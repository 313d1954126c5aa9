import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The gateway's version, from the nearest package.json named `tokenguard` above this file
 * (the same code runs from src under ts-jest and from dist in production).
 */
function findVersion(): string {
  let dir = __dirname;
  for (let depth = 0; depth < 10; depth++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'tokenguard' && pkg.version) return pkg.version;
    } catch {
      // no package.json at this level
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return '0.0.0-unknown';
}

export const GATEWAY_VERSION = findVersion();
