import { plainToInstance, Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  MinLength,
  validateSync,
  type ValidationError,
} from 'class-validator';
import type {
  AppConfig,
  AuthMode,
  BudgetScopeType,
  LimiterMode,
  LogLevel,
  NodeEnv,
  StoreFailureMode,
} from './app-config';
import { type ParsedPolicyFile, readPolicyFile } from './policy-file';

/** Milli-token levels must stay exact in a double (and in Lua). */
const MAX_CAPACITY = 1e12;
const LOG_LEVELS: readonly LogLevel[] = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
];
const NODE_ENVS: readonly NodeEnv[] = ['development', 'production', 'test'];
const STORE_FAILURE_MODES: readonly StoreFailureMode[] = ['closed', 'open', 'local'];
const AUTH_MODES: readonly AuthMode[] = ['headers', 'keys'];
const LIMITER_MODES: readonly LimiterMode[] = ['enforce', 'shadow'];
const ORIGIN = 'https?://[^\\s,/]+';
const CORS_ORIGIN_LIST = new RegExp(`^(\\*|${ORIGIN}(\\s*,\\s*${ORIGIN})*)$`);
const SCOPE_TYPE_PATTERN = '(global|team|rolegroup|role|user)';
const SCOPE_TYPE_LIST = new RegExp(`^${SCOPE_TYPE_PATTERN}(\\s*,\\s*${SCOPE_TYPE_PATTERN})*$`);

/** Empty strings count as unset, so `FOO=` in a .env file falls back to the default. */
const blankToUndefined = (value: unknown): unknown =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

const toNumber = ({ value }: { value: unknown }): unknown => {
  const v = blankToUndefined(value);
  if (typeof v !== 'string') return v;
  // Number('') and Number(' ') are 0; blank was handled above, anything else must parse fully.
  const n = Number(v.trim());
  return Number.isNaN(n) ? v : n;
};

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);
const toBoolean = ({ value }: { value: unknown }): unknown => {
  const v = blankToUndefined(value);
  if (typeof v !== 'string') return v;
  const word = v.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  return v;
};

const toTrimmedString = ({ value }: { value: unknown }): unknown => {
  const v = blankToUndefined(value);
  return typeof v === 'string' ? v.trim() : v;
};

/** A non-negative token amount. */
function Capacity(): PropertyDecorator {
  return (target, key) => {
    Transform(toNumber)(target, key);
    IsOptional()(target, key);
    IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'must be a number' })(
      target,
      key,
    );
    Min(0, { message: 'must not be negative' })(target, key);
    Max(MAX_CAPACITY, { message: `must be at most ${MAX_CAPACITY}` })(target, key);
  };
}

function IntInRange(min: number, max: number): PropertyDecorator {
  return (target, key) => {
    Transform(toNumber)(target, key);
    IsOptional()(target, key);
    IsInt({ message: 'must be a whole number' })(target, key);
    Min(min, { message: `must be at least ${min}` })(target, key);
    Max(max, { message: `must be at most ${max}` })(target, key);
  };
}

/** The raw environment, one property per variable name, before defaults. */
class EnvironmentVariables {
  @Transform(toTrimmedString) @IsOptional() @IsIn(NODE_ENVS) NODE_ENV?: NodeEnv;
  @IntInRange(0, 65535) PORT?: number;
  @Transform(toTrimmedString) @IsOptional() @IsString() @MinLength(1) HOST?: string;
  @Transform(toTrimmedString) @IsOptional() @IsIn(LOG_LEVELS) LOG_LEVEL?: LogLevel;
  @IntInRange(1, 1024 * 1024 * 1024) BODY_LIMIT?: number;

  @Transform(toTrimmedString) @IsOptional() @IsString() OPENAI_API_KEY?: string;
  @Transform(toTrimmedString)
  @IsOptional()
  @IsUrl({ protocols: ['http', 'https'], require_tld: false, require_protocol: true })
  OPENAI_BASE_URL?: string;
  @IntInRange(1, 24 * 3600 * 1000) UPSTREAM_TIMEOUT_MS?: number;
  @IntInRange(1, 24 * 3600 * 1000) UPSTREAM_STREAM_IDLE_TIMEOUT_MS?: number;
  @IntInRange(1, 10000) UPSTREAM_CONNECTIONS?: number;
  @IntInRange(1, 1000) CIRCUIT_BREAKER_FAILURE_THRESHOLD?: number;
  @IntInRange(1, 3600) CIRCUIT_BREAKER_RECOVERY_TIMEOUT?: number;

  @Transform(toTrimmedString)
  @IsOptional()
  @IsUrl({ protocols: ['redis', 'rediss'], require_tld: false, require_protocol: true })
  REDIS_URL?: string;

  /** Comma-separated seed nodes; split after validation. */
  @Transform(toTrimmedString)
  @IsOptional()
  @Matches(/^[^,\s]+(\s*,\s*[^,\s]+)*$/, { message: 'must be a comma-separated list of host:port' })
  REDIS_CLUSTER_NODES?: string;
  @Transform(toTrimmedString)
  @IsOptional()
  @Matches(/^[A-Za-z0-9._-]{1,64}$/, { message: 'must be 1-64 characters from A-Z a-z 0-9 . _ -' })
  REDIS_NAMESPACE?: string;
  @IntInRange(1, 60_000) REDIS_COMMAND_TIMEOUT_MS?: number;
  @Transform(toTrimmedString)
  @IsOptional()
  @IsIn(STORE_FAILURE_MODES, { message: `must be one of ${STORE_FAILURE_MODES.join(', ')}` })
  STORE_FAILURE_MODE?: StoreFailureMode;

  @Transform(toTrimmedString)
  @IsOptional()
  @IsUrl({ protocols: ['http', 'https'], require_tld: false, require_protocol: true })
  SENTRY_DSN?: string;

  /** Guessable tokens defeat the point; 16 characters is the floor. */
  @Transform(toTrimmedString)
  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'must be at least 16 characters' })
  ADMIN_TOKEN?: string;

  @Transform(toBoolean) @IsOptional() @IsBoolean() READINESS_REQUIRES_UPSTREAM?: boolean;
  @IntInRange(1, 3600) HEALTH_UPSTREAM_CACHE_SECONDS?: number;

  @Capacity() CAP_GLOBAL?: number;
  @Capacity() CAP_TEAM?: number;
  @Capacity() CAP_ROLEGROUP?: number;
  @Capacity() CAP_ROLE?: number;
  @Capacity() CAP_USER?: number;
  @Capacity() RATE_GLOBAL?: number;
  @Capacity() RATE_TEAM?: number;
  @Capacity() RATE_ROLEGROUP?: number;
  @Capacity() RATE_ROLE?: number;
  @Capacity() RATE_USER?: number;

  @Transform(toBoolean) @IsOptional() @IsBoolean() ENFORCE_GLOBAL_SCOPE?: boolean;
  @Capacity() TOKEN_ADJUSTMENT_THRESHOLD?: number;
  @IntInRange(1, 10_000_000) DEFAULT_MAX_OUTPUT_TOKENS?: number;
  @IntInRange(1, 7 * 24 * 3600) RESERVATION_TTL_SECONDS?: number;

  @Transform(toBoolean) @IsOptional() @IsBoolean() ENABLE_METRICS?: boolean;
  /** Comma-separated scope types; split after validation. */
  @Transform(toTrimmedString)
  @IsOptional()
  @Matches(SCOPE_TYPE_LIST, {
    message: 'must be a comma-separated list of global, team, rolegroup, role, user',
  })
  METRICS_BUCKET_SCOPES?: string;
  @IntInRange(0, 10_000) METRICS_MAX_BUCKET_SERIES?: number;

  @Transform(toBoolean) @IsOptional() @IsBoolean() ENFORCE_UPSTREAM_LIMITS?: boolean;
  @Transform(toBoolean) @IsOptional() @IsBoolean() ENABLE_BACKGROUND_SYNC?: boolean;
  @IntInRange(1, 24 * 3600) SYNC_INTERVAL_SECONDS?: number;
  /** A model name as clients send it (printable ASCII, no spaces). */
  @Transform(toTrimmedString)
  @IsOptional()
  @Matches(/^[\x21-\x7e]{1,256}$/, { message: 'must be a model name without spaces' })
  SYNC_PROBE_MODEL?: string;
  @IntInRange(1, 7 * 24 * 3600) SYNC_STALE_AFTER_SECONDS?: number;

  @Transform(toTrimmedString)
  @IsOptional()
  @IsIn(AUTH_MODES, { message: `must be one of ${AUTH_MODES.join(', ')}` })
  AUTH_MODE?: AuthMode;
  @Transform(toTrimmedString)
  @IsOptional()
  @IsIn(LIMITER_MODES, { message: `must be one of ${LIMITER_MODES.join(', ')}` })
  LIMITER_MODE?: LimiterMode;
  /** Path of a YAML or JSON file of budgets, read and validated at boot. */
  @Transform(toTrimmedString) @IsOptional() @IsString() POLICY_FILE?: string;
  @IntInRange(1, 3600) POLICY_FILE_CHECK_SECONDS?: number;
  /** `*` or comma-separated origins; split after validation. */
  @Transform(toTrimmedString)
  @IsOptional()
  @Matches(CORS_ORIGIN_LIST, {
    message: 'must be * or a comma-separated list of origins like https://app.example.com',
  })
  CORS_ORIGINS?: string;
  @IntInRange(1024, 1024 * 1024) MAX_HEADER_SIZE?: number;
  /** Receiving a whole request (headers and body); 0: no deadline. */
  @IntInRange(0, 3_600_000) REQUEST_TIMEOUT_MS?: number;
  /** Receiving the request line and headers; at most REQUEST_TIMEOUT_MS. */
  @IntInRange(1, 3_600_000) HEADERS_TIMEOUT_MS?: number;
  /** An idle keep-alive connection is closed after this long; 0 (never) is not offered. */
  @IntInRange(1, 3_600_000) KEEP_ALIVE_TIMEOUT_MS?: number;
  /** 0: abort what is in flight at once; the cap keeps it inside any orchestrator's patience. */
  @IntInRange(0, 600_000) SHUTDOWN_GRACE_MS?: number;
}

export const CONFIG_DEFAULTS = {
  PORT: 8000,
  HOST: '0.0.0.0',
  LOG_LEVEL: 'info',
  BODY_LIMIT: 16 * 1024 * 1024,
  OPENAI_BASE_URL: 'https://api.openai.com/v1',
  UPSTREAM_TIMEOUT_MS: 600_000,
  UPSTREAM_STREAM_IDLE_TIMEOUT_MS: 60_000,
  UPSTREAM_CONNECTIONS: 128,
  CIRCUIT_BREAKER_FAILURE_THRESHOLD: 5,
  CIRCUIT_BREAKER_RECOVERY_TIMEOUT: 60,
  CAP_GLOBAL: 10_000,
  CAP_TEAM: 5_000,
  CAP_ROLEGROUP: 4_000,
  CAP_ROLE: 2_000,
  CAP_USER: 1_000,
  RATE_GLOBAL: 50,
  RATE_TEAM: 25,
  RATE_ROLEGROUP: 20,
  RATE_ROLE: 10,
  RATE_USER: 5,
  ENFORCE_GLOBAL_SCOPE: false,
  TOKEN_ADJUSTMENT_THRESHOLD: 0,
  DEFAULT_MAX_OUTPUT_TOKENS: 256,
  RESERVATION_TTL_SECONDS: 600,
  REDIS_NAMESPACE: 'tokenguard',
  REDIS_COMMAND_TIMEOUT_MS: 500,
  STORE_FAILURE_MODE: 'local',
  READINESS_REQUIRES_UPSTREAM: false,
  HEALTH_UPSTREAM_CACHE_SECONDS: 30,
  ENABLE_METRICS: true,
  METRICS_BUCKET_SCOPES: 'global,team',
  METRICS_MAX_BUCKET_SERIES: 100,
  ENFORCE_UPSTREAM_LIMITS: true,
  ENABLE_BACKGROUND_SYNC: true,
  SYNC_INTERVAL_SECONDS: 300,
  AUTH_MODE: 'headers',
  LIMITER_MODE: 'enforce',
  // Node's own default: 16 KiB for the request line and every header together.
  MAX_HEADER_SIZE: 16 * 1024,
  // Generous for any JSON request on a slow link; raise it with BODY_LIMIT for slow uploads.
  REQUEST_TIMEOUT_MS: 30_000,
  // Headers come in one packet from any real client; also bounds a connection that sends nothing.
  HEADERS_TIMEOUT_MS: 10_000,
  // Fastify's default: longer than the 60 s idle timeout of the usual load balancers, so the
  // balancer, not the gateway, closes an idle connection (no request races a close).
  KEEP_ALIVE_TIMEOUT_MS: 72_000,
  SHUTDOWN_GRACE_MS: 10_000,
  // One HGETALL of a tiny hash per instance: cheap enough to notice a lost file within seconds.
  POLICY_FILE_CHECK_SECONDS: 5,
} as const;

export class ConfigValidationError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigValidationError';
  }
}

const isSecret = (name: string): boolean => /KEY|TOKEN|PASSWORD|SECRET/.test(name);

/** URLs may carry credentials (`redis://:password@host`). */
const withoutCredentials = (value: unknown): unknown =>
  typeof value === 'string' ? value.replace(/\/\/[^/@]*@/, '//***@') : value;

function describeProblem(error: ValidationError): string {
  const shown = isSecret(error.property)
    ? '(hidden)'
    : JSON.stringify(withoutCredentials(error.value));
  const reasons = Object.values(error.constraints ?? {}).map((m) =>
    // class-validator names the property first; the variable name leads our line already.
    m.startsWith(error.property) ? m.slice(error.property.length).trim() : m,
  );
  return `${error.property}: ${reasons.join('; ')} (got ${shown})`;
}

/** Reads the given environment into typed configuration, or throws naming every bad variable. */
export function loadAppConfig(raw: Record<string, unknown>): AppConfig {
  const env = plainToInstance(EnvironmentVariables, raw, { excludeExtraneousValues: false });
  const errors = validateSync(env, { whitelist: true, stopAtFirstError: true });
  const problems = errors.map(describeProblem);
  if (env.NODE_ENV === 'production' && env.ADMIN_TOKEN === undefined) {
    problems.push(
      'ADMIN_TOKEN: is required when NODE_ENV=production (the admin API would be open)',
    );
  }
  const requestTimeoutMs = env.REQUEST_TIMEOUT_MS ?? CONFIG_DEFAULTS.REQUEST_TIMEOUT_MS;
  if (
    typeof env.HEADERS_TIMEOUT_MS === 'number' &&
    typeof requestTimeoutMs === 'number' &&
    requestTimeoutMs > 0 &&
    env.HEADERS_TIMEOUT_MS > requestTimeoutMs
  ) {
    // Node refuses it too: the request deadline already covers the headers.
    problems.push(
      `HEADERS_TIMEOUT_MS: must not exceed REQUEST_TIMEOUT_MS (${requestTimeoutMs}) ` +
        `(got ${env.HEADERS_TIMEOUT_MS})`,
    );
  }
  // A bad policy file stops the boot like a bad variable, naming its line and field.
  const policyFile = env.POLICY_FILE === undefined ? undefined : readPolicyFile(env.POLICY_FILE);
  problems.push(...(policyFile?.problems ?? []));
  if (problems.length > 0) throw new ConfigValidationError(problems);

  const d = CONFIG_DEFAULTS;
  const policy = (
    cap: number | undefined,
    capDefault: number,
    rate: number | undefined,
    rateDefault: number,
  ) => ({
    capacity: cap ?? capDefault,
    refillPerSec: rate ?? rateDefault,
  });
  const config: AppConfig = {
    nodeEnv: env.NODE_ENV ?? 'development',
    host: env.HOST ?? d.HOST,
    port: env.PORT ?? d.PORT,
    logLevel: env.LOG_LEVEL ?? d.LOG_LEVEL,
    bodyLimitBytes: env.BODY_LIMIT ?? d.BODY_LIMIT,
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS ?? d.SHUTDOWN_GRACE_MS,
    adminToken: env.ADMIN_TOKEN,
    sentryDsn: env.SENTRY_DSN,
    health: {
      readinessRequiresUpstream: env.READINESS_REQUIRES_UPSTREAM ?? d.READINESS_REQUIRES_UPSTREAM,
      upstreamProbeCacheMs:
        (env.HEALTH_UPSTREAM_CACHE_SECONDS ?? d.HEALTH_UPSTREAM_CACHE_SECONDS) * 1000,
    },
    store: {
      redis: redisConfig(env),
      failureMode: env.STORE_FAILURE_MODE ?? d.STORE_FAILURE_MODE,
    },
    upstream: {
      apiKey: env.OPENAI_API_KEY,
      baseUrl: (env.OPENAI_BASE_URL ?? d.OPENAI_BASE_URL).replace(/\/+$/, ''),
      timeoutMs: env.UPSTREAM_TIMEOUT_MS ?? d.UPSTREAM_TIMEOUT_MS,
      streamIdleTimeoutMs: env.UPSTREAM_STREAM_IDLE_TIMEOUT_MS ?? d.UPSTREAM_STREAM_IDLE_TIMEOUT_MS,
      connections: env.UPSTREAM_CONNECTIONS ?? d.UPSTREAM_CONNECTIONS,
      circuitBreakerFailureThreshold:
        env.CIRCUIT_BREAKER_FAILURE_THRESHOLD ?? d.CIRCUIT_BREAKER_FAILURE_THRESHOLD,
      circuitBreakerRecoveryMs:
        (env.CIRCUIT_BREAKER_RECOVERY_TIMEOUT ?? d.CIRCUIT_BREAKER_RECOVERY_TIMEOUT) * 1000,
    },
    limits: {
      defaults: {
        global: policy(env.CAP_GLOBAL, d.CAP_GLOBAL, env.RATE_GLOBAL, d.RATE_GLOBAL),
        team: policy(env.CAP_TEAM, d.CAP_TEAM, env.RATE_TEAM, d.RATE_TEAM),
        rolegroup: policy(env.CAP_ROLEGROUP, d.CAP_ROLEGROUP, env.RATE_ROLEGROUP, d.RATE_ROLEGROUP),
        role: policy(env.CAP_ROLE, d.CAP_ROLE, env.RATE_ROLE, d.RATE_ROLE),
        user: policy(env.CAP_USER, d.CAP_USER, env.RATE_USER, d.RATE_USER),
      },
      enforceGlobalScope: env.ENFORCE_GLOBAL_SCOPE ?? d.ENFORCE_GLOBAL_SCOPE,
      tokenAdjustmentThreshold: env.TOKEN_ADJUSTMENT_THRESHOLD ?? d.TOKEN_ADJUSTMENT_THRESHOLD,
      defaultMaxOutputTokens: env.DEFAULT_MAX_OUTPUT_TOKENS ?? d.DEFAULT_MAX_OUTPUT_TOKENS,
      reservationTtlMs: (env.RESERVATION_TTL_SECONDS ?? d.RESERVATION_TTL_SECONDS) * 1000,
    },
    metrics: {
      enabled: env.ENABLE_METRICS ?? d.ENABLE_METRICS,
      bucketScopes: [
        ...new Set(
          (env.METRICS_BUCKET_SCOPES ?? d.METRICS_BUCKET_SCOPES)
            .split(',')
            .map((type) => type.trim() as BudgetScopeType),
        ),
      ],
      maxBucketSeries: env.METRICS_MAX_BUCKET_SERIES ?? d.METRICS_MAX_BUCKET_SERIES,
    },
    sync: syncConfig(env),
    limiterMode: env.LIMITER_MODE ?? d.LIMITER_MODE,
    security: {
      authMode: env.AUTH_MODE ?? d.AUTH_MODE,
      corsOrigins: (env.CORS_ORIGINS ?? '')
        .split(',')
        .map((origin) => origin.trim())
        .filter((origin) => origin !== ''),
      maxHeaderBytes: env.MAX_HEADER_SIZE ?? d.MAX_HEADER_SIZE,
    },
    http: httpConfig(env),
    policyFile: undefined,
  };
  const checkIntervalMs = (env.POLICY_FILE_CHECK_SECONDS ?? d.POLICY_FILE_CHECK_SECONDS) * 1000;
  return deepFreeze(withPolicyFile(config, env.POLICY_FILE, policyFile?.file, checkIntervalMs));
}

/**
 * The file's defaults win over CAP_* / RATE_* for the fields it sets; a budget's missing field
 * is the type default, so that applying the file sets exactly what it says.
 */
function withPolicyFile(
  config: AppConfig,
  path: string | undefined,
  file: ParsedPolicyFile | undefined,
  checkIntervalMs: number,
): AppConfig {
  if (path === undefined || file === undefined) return config;
  const defaults = { ...config.limits.defaults };
  for (const type of Object.keys(defaults) as BudgetScopeType[]) {
    defaults[type] = { ...defaults[type], ...file.defaults[type] };
  }
  const budgets = file.budgets.map(({ scope, id, capacity, refillPerSec }) => ({
    scope,
    id,
    policy: {
      capacity: capacity ?? defaults[scope].capacity,
      refillPerSec: refillPerSec ?? defaults[scope].refillPerSec,
    },
  }));
  return {
    ...config,
    limits: { ...config.limits, defaults },
    policyFile: { path, budgets, checkIntervalMs },
  };
}

function httpConfig(env: EnvironmentVariables): AppConfig['http'] {
  const d = CONFIG_DEFAULTS;
  const requestTimeoutMs = env.REQUEST_TIMEOUT_MS ?? d.REQUEST_TIMEOUT_MS;
  // Unset: the default, but never past a shorter request deadline (which includes the headers).
  const headersTimeoutMs =
    env.HEADERS_TIMEOUT_MS ??
    (requestTimeoutMs > 0
      ? Math.min(d.HEADERS_TIMEOUT_MS, requestTimeoutMs)
      : d.HEADERS_TIMEOUT_MS);
  return {
    requestTimeoutMs,
    headersTimeoutMs,
    keepAliveTimeoutMs: env.KEEP_ALIVE_TIMEOUT_MS ?? d.KEEP_ALIVE_TIMEOUT_MS,
  };
}

function syncConfig(env: EnvironmentVariables): AppConfig['sync'] {
  const d = CONFIG_DEFAULTS;
  const intervalSeconds = env.SYNC_INTERVAL_SECONDS ?? d.SYNC_INTERVAL_SECONDS;
  return {
    enforceUpstreamLimits: env.ENFORCE_UPSTREAM_LIMITS ?? d.ENFORCE_UPSTREAM_LIMITS,
    backgroundSync: env.ENABLE_BACKGROUND_SYNC ?? d.ENABLE_BACKGROUND_SYNC,
    intervalMs: intervalSeconds * 1000,
    probeModel: env.SYNC_PROBE_MODEL,
    // Three missed intervals by default: one late or skipped run does not drop what was learned.
    staleAfterMs: (env.SYNC_STALE_AFTER_SECONDS ?? 3 * intervalSeconds) * 1000,
  };
}

function redisConfig(env: EnvironmentVariables): AppConfig['store']['redis'] {
  const clusterNodes = (env.REDIS_CLUSTER_NODES ?? '')
    .split(',')
    .map((node) => node.trim())
    .filter((node) => node !== '');
  if (env.REDIS_URL === undefined && clusterNodes.length === 0) return undefined;
  return {
    url: env.REDIS_URL,
    clusterNodes,
    namespace: env.REDIS_NAMESPACE ?? CONFIG_DEFAULTS.REDIS_NAMESPACE,
    commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS ?? CONFIG_DEFAULTS.REDIS_COMMAND_TIMEOUT_MS,
  };
}

function deepFreeze<T extends object>(value: T): T {
  for (const child of Object.values(value)) {
    if (child && typeof child === 'object') deepFreeze(child as object);
  }
  return Object.freeze(value);
}
