import {
  BEHAVIOUR_KEYS,
  knobAcceptsNull,
  knobIsText,
  MockBehaviour,
  parseBehaviourPatch,
} from './mock-behaviour';
import type { StartMockOpenAIOptions } from './mock-server';

/**
 * Startup configuration from environment variables and command-line flags (flags win).
 * Pure: `main.ts` hands in `process.argv` and `process.env`, the only place reading them.
 *
 * Every knob has a flag and a variable named after it: `latencyMs` → `--latency-ms`,
 * `MOCK_LATENCY_MS`. Besides: `--port`/`MOCK_PORT` (8080), `--host`/`MOCK_HOST`
 * (127.0.0.1), `--api-key`/`MOCK_API_KEY` (comma-separated), `--require-auth`,
 * `--models`/`MOCK_MODELS` (comma-separated allow-list), `--record`/`--no-record`,
 * `--record-limit`, `--log`.
 */
export function parseMockCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): StartMockOpenAIOptions {
  const flags = parseFlags(argv);
  const text = (name: string): string | undefined =>
    flags.get(name) ?? env[`MOCK_${name.replace(/-/g, '_').toUpperCase()}`];

  const raw: Record<string, unknown> = {};
  for (const key of BEHAVIOUR_KEYS) {
    const value = text(kebab(key));
    if (value !== undefined) raw[key] = knobValue(key, value);
  }
  let behaviour: Partial<MockBehaviour>;
  try {
    behaviour = parseBehaviourPatch(raw, 'behaviour');
  } catch (err) {
    throw new Error(`Invalid mock setting: ${(err as Error).message}`);
  }

  const options: StartMockOpenAIOptions = {
    port: integer('port', text('port') ?? '8080', 0),
    host: text('host') ?? '127.0.0.1',
    behaviour,
    gracefulClose: true,
    warmUp: true,
  };
  const keys = list(text('api-key'));
  if (keys.length > 0) options.apiKey = keys;
  const requireAuth = text('require-auth');
  if (requireAuth !== undefined) options.requireAuth = bool('require-auth', requireAuth);
  const models = list(text('models'));
  if (models.length > 0) options.models = models;
  const record = text('record');
  if (record !== undefined) options.record = bool('record', record);
  const recordLimit = text('record-limit');
  if (recordLimit !== undefined) options.recordLimit = integer('record-limit', recordLimit, 0);
  const log = text('log');
  options.logger = log === undefined ? true : bool('log', log);
  return options;
}

export const MOCK_CLI_HELP = `Usage: node main.js [--port 8080] [--host 127.0.0.1] [--flag value ...]
Knob flags (env MOCK_<NAME>): ${BEHAVIOUR_KEYS.map((key) => `--${kebab(key)}`).join(' ')}
Other: --api-key k1,k2  --require-auth  --models m1,m2  --no-record  --record-limit N  --no-log`;

/** `--name value`, `--name=value`, `--flag` (true), `--no-flag` (false). */
function parseFlags(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`Unexpected argument '${arg}'.`);
    const eq = arg.indexOf('=');
    if (eq !== -1) {
      flags.set(arg.slice(2, eq), arg.slice(eq + 1));
    } else if (arg.startsWith('--no-')) {
      flags.set(arg.slice(5), 'false');
    } else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
      flags.set(arg.slice(2), argv[++i]);
    } else {
      flags.set(arg.slice(2), 'true');
    }
  }
  return flags;
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Text to the JSON value the knob validator expects; it reports what does not fit. */
function knobValue(key: keyof MockBehaviour, value: string): unknown {
  if (knobAcceptsNull(key) && (value === '' || value === 'null')) return null;
  if (knobIsText(key)) return value;
  if (value === 'true' || value === 'false') return value === 'true';
  const number = Number(value);
  return value.trim() !== '' && Number.isFinite(number) ? number : value;
}

function integer(name: string, value: string, min: number): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < min) {
    throw new Error(
      `Invalid mock setting: '${name}' must be an integer >= ${min}, got '${value}'.`,
    );
  }
  return number;
}

function bool(name: string, value: string): boolean {
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off)$/i.test(value)) return false;
  throw new Error(`Invalid mock setting: '${name}' must be true or false, got '${value}'.`);
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}
