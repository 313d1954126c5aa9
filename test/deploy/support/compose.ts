import { readText } from './project';

export type ComposeEnvironment = Record<string, string | number | boolean | null> | string[];

export interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string; target?: string };
  command?: string | string[];
  environment?: ComposeEnvironment;
  ports?: (string | number | { target: number; published?: string | number })[];
  volumes?: (string | { type?: string; source?: string; target: string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  profiles?: string[];
}

export interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** `KEY=value` lines of an env file (`#` comments, optional quotes). */
export function readEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of readText(path).split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`${path}: not KEY=value: ${line}`);
    out[line.slice(0, eq).trim()] = line
      .slice(eq + 1)
      .trim()
      .replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

/**
 * Compose's variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?message}`, `${VAR?message}` and `$$`. A missing required variable throws.
 */
export function interpolate(value: string, vars: Readonly<Record<string, string>>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, braced: string | undefined, op: string | undefined, arg: string | undefined, bare) => {
      if (whole === '$$') return '$';
      const name = (braced ?? bare) as string;
      const set = Object.prototype.hasOwnProperty.call(vars, name);
      const current = set ? vars[name] : undefined;
      const missing = op?.startsWith(':') ? !current : !set;
      if (op === ':-' || op === '-') return missing ? (arg ?? '') : (current ?? '');
      if (op === ':?' || op === '?') {
        if (missing) throw new Error(`required variable ${name} is missing: ${arg ?? ''}`);
        return current ?? '';
      }
      return current ?? '';
    },
  );
}

/** A service's environment as a map, interpolated with `vars`. */
export function serviceEnvironment(
  service: ComposeService,
  vars: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const out: Record<string, string> = {};
  const environment = service.environment ?? {};
  const entries: [string, string][] = Array.isArray(environment)
    ? environment.map((item) => {
        const eq = item.indexOf('=');
        return eq === -1 ? [item, vars[item] ?? ''] : [item.slice(0, eq), item.slice(eq + 1)];
      })
    : Object.entries(environment).map(([k, v]) => [k, v === null ? (vars[k] ?? '') : String(v)]);
  for (const [key, value] of entries) out[key] = interpolate(value, vars);
  return out;
}

/** `"8000:8000"`, `"127.0.0.1:8000:8000/tcp"`, `8000`, `{ target: 8000 }` → container port. */
export function containerPorts(service: ComposeService): number[] {
  return (service.ports ?? []).map((port) => {
    if (typeof port === 'number') return port;
    if (typeof port === 'object') return port.target;
    const container = port.split(':').pop() ?? '';
    return Number(container.replace(/\/(tcp|udp)$/, ''));
  });
}

export interface Mount {
  readonly source: string;
  readonly target: string;
  readonly bind: boolean;
}

export function serviceMounts(service: ComposeService): Mount[] {
  return (service.volumes ?? []).map((volume) => {
    if (typeof volume === 'object') {
      const source = volume.source ?? '';
      return { source, target: volume.target, bind: volume.type === 'bind' };
    }
    const [source, target] = volume.split(':');
    return { source, target, bind: /^[./~]/.test(source) };
  });
}

export const dependsOn = (service: ComposeService): Record<string, { condition?: string }> =>
  Array.isArray(service.depends_on)
    ? Object.fromEntries(service.depends_on.map((name) => [name, {}]))
    : (service.depends_on ?? {});

/** The healthcheck command of a service as one string (empty when none). */
export function healthcheckCommand(service: ComposeService): string {
  const test = service.healthcheck?.test;
  if (!test || service.healthcheck?.disable) return '';
  return Array.isArray(test) ? test.join(' ') : test;
}

/** URLs an HTTP health command requests: full URLs, or a base + `'/path'` concatenation. */
export function healthUrls(command: string): { port: number | undefined; path: string }[] {
  const urls: { port: number | undefined; path: string }[] = [];
  for (const m of command.matchAll(/https?:\/\/[^/'"\s:]+(?::(\d+))?(\/[^'"\s)]*)/g)) {
    urls.push({ port: m[1] ? Number(m[1]) : undefined, path: m[2] });
  }
  if (urls.length === 0) {
    for (const m of command.matchAll(/\+\s*'(\/[^']*)'/g))
      urls.push({ port: undefined, path: m[1] });
  }
  return urls;
}
