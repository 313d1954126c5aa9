import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

/** The repository root. */
export const ROOT = resolve(__dirname, '../../..');

export const fromRoot = (...parts: string[]): string => join(ROOT, ...parts);

/** A path relative to the root, with forward slashes. */
export const rootRelative = (path: string): string => relative(ROOT, path).split(sep).join('/');

export const readText = (path: string): string => readFileSync(fromRoot(path), 'utf8');

export const isFile = (path: string): boolean => existsSync(path) && statSync(path).isFile();
export const isDirectory = (path: string): boolean =>
  existsSync(path) && statSync(path).isDirectory();

/** One YAML document; parse errors (and duplicate keys) throw, naming the file. */
export function readYaml<T>(path: string): T {
  try {
    return parse(readText(path), { uniqueKeys: true, prettyErrors: true }) as T;
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`);
  }
}

/** Every document of a multi-document YAML file; the first error found throws. */
export function readYamlDocuments<T>(path: string): T[] {
  const documents = parseAllDocuments(readText(path), { uniqueKeys: true, prettyErrors: true });
  if (!Array.isArray(documents)) return [];
  return documents.map((document) => {
    if (document.errors.length > 0) {
      throw new Error(`${path}: ${document.errors.map((e) => e.message).join('; ')}`);
    }
    return document.toJS() as T;
  });
}

/** Files under `dir` (relative to the root), recursively, skipping the given directory names. */
export function listFiles(dir: string, skip: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  const walk = (absolute: string) => {
    for (const entry of readdirSync(absolute, { withFileTypes: true })) {
      if (skip.has(entry.name)) continue;
      const child = join(absolute, entry.name);
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile()) out.push(rootRelative(child));
    }
  };
  walk(fromRoot(dir));
  return out.sort();
}

/** Source files that end up in a build: no specs, no test helpers. */
export const isRuntimeSource = (path: string): boolean =>
  path.endsWith('.ts') &&
  !path.endsWith('.spec.ts') &&
  !path.endsWith('.e2e-spec.ts') &&
  !path.endsWith('.d.ts') &&
  !path.split('/').includes('testing');

/** The `.js` file `nest build` writes for a project's entry, from nest-cli.json and tsconfig. */
export function nestEntryOutput(project: string): string {
  const nest = JSON.parse(readText('nest-cli.json')) as {
    projects: Record<string, { entryFile: string; compilerOptions?: { tsConfigPath?: string } }>;
  };
  const entry = nest.projects[project];
  if (!entry?.compilerOptions?.tsConfigPath)
    throw new Error(`nest-cli.json: no project ${project}`);
  const tsconfigPath = entry.compilerOptions.tsConfigPath;
  const tsconfig = JSON.parse(readText(tsconfigPath)) as { compilerOptions?: { outDir?: string } };
  const outDir = tsconfig.compilerOptions?.outDir;
  if (!outDir) throw new Error(`${tsconfigPath}: no outDir`);
  const absolute = resolve(fromRoot(tsconfigPath), '..', outDir, `${entry.entryFile}.js`);
  return rootRelative(absolute);
}

/** The tsconfig files a nest project's build reads (its own and every `extends`). */
export function nestTsconfigChain(project: string): string[] {
  const nest = JSON.parse(readText('nest-cli.json')) as {
    projects: Record<string, { compilerOptions?: { tsConfigPath?: string } }>;
  };
  let current = nest.projects[project]?.compilerOptions?.tsConfigPath;
  const chain: string[] = [];
  while (current) {
    chain.push(current);
    const config = JSON.parse(readText(current)) as { extends?: string };
    current = config.extends
      ? rootRelative(resolve(fromRoot(current), '..', config.extends))
      : undefined;
  }
  return chain;
}

/** `Kubernetes`-style quantity (`384Mi`, `1G`, `500m`, `2`) in bytes or cores. */
export function parseQuantity(value: string | number): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(value.trim());
  if (!match) throw new Error(`not a quantity: ${value}`);
  const factor: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
  };
  return Number(match[1]) * (match[2] ? factor[match[2]] : 1);
}
