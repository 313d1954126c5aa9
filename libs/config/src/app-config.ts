import type { PolicyFileConfig } from './policy-file';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type NodeEnv = 'development' | 'production' | 'test';

export interface UpstreamConfig {
  /** Server-side provider key; never sent back to clients nor logged. Unset = proxy disabled. */
  readonly apiKey: string | undefined;
  /** Base URL including the API version path, e.g. `https://api.openai.com/v1`. */
  readonly baseUrl: string;
  /** Connect + response headers deadline (and between body bytes of a JSON response). */
  readonly timeoutMs: number;
  /** A stream with no upstream bytes for this long is cut. */
  readonly streamIdleTimeoutMs: number;
  readonly connections: number;
  /** Consecutive upstream failures (connection, timeout, 5xx) that open the circuit. */
  readonly circuitBreakerFailureThreshold: number;
  /** How long the circuit stays open before one trial call is let through. */
  readonly circuitBreakerRecoveryMs: number;
}

/** Kept structurally equal to the bucket store's policy so config stays dependency-free. */
export interface BudgetPolicy {
  readonly capacity: number;
  readonly refillPerSec: number;
}

export type BudgetScopeType = 'global' | 'team' | 'rolegroup' | 'role' | 'user';

export type StoreFailureMode = 'closed' | 'open' | 'local';

export interface RedisConfig {
  /** `redis://` or `rediss://` URL (password and db index included); unset with a cluster. */
  readonly url: string | undefined;
  /** Seed nodes of a Redis Cluster (`host:port` or URLs); empty for a single Redis. */
  readonly clusterNodes: readonly string[];
  /** Keys live under `tg:{<namespace>}:`; instances sharing it share budgets. */
  readonly namespace: string;
  readonly commandTimeoutMs: number;
}

export interface StoreConfig {
  /** Unset: the in-memory store (one instance). */
  readonly redis: RedisConfig | undefined;
  /** What the gateway does while Redis is unreachable. */
  readonly failureMode: StoreFailureMode;
}

/** What `/metrics` exports (see libs/metrics). */
export interface MetricsConfig {
  /** False: no `/metrics` endpoint (404) and nothing recorded. */
  readonly enabled: boolean;
  /**
   * Scope types whose buckets get level/capacity gauges, one series per id this instance has
   * seen set or charged (global always has one). Ids of these types appear as label values.
   */
  readonly bucketScopes: readonly BudgetScopeType[];
  /** Upper bound on the per-id bucket series (global excluded). */
  readonly maxBucketSeries: number;
}

export interface HealthConfig {
  /** Readiness fails when the upstream is unreachable or the circuit is open. */
  readonly readinessRequiresUpstream: boolean;
  /** How long an upstream probe result is reused, so probes never flood the provider. */
  readonly upstreamProbeCacheMs: number;
}

/**
 * `headers`: identity comes from trusted x-user-id / x-team-id / x-role / x-llm-rolegroup
 * headers (behind an authenticating proxy). `keys`: from the client's API key.
 */
export type AuthMode = 'headers' | 'keys';

export type LimiterMode = 'enforce' | 'shadow';

export interface SecurityConfig {
  readonly authMode: AuthMode;
  /** Origins allowed by CORS; empty: CORS off (no CORS headers at all); `['*']`: any origin. */
  readonly corsOrigins: readonly string[];
  /** Largest request line plus headers, in bytes (Node's maxHeaderSize); 431 above. */
  readonly maxHeaderBytes: number;
}

/**
 * Deadlines of the HTTP server for receiving requests from clients. They end once a request
 * is in: a response (a long stream included) is never cut by them.
 */
export interface HttpServerConfig {
  /** The whole request, headers and body (408, connection closed); 0: no deadline. */
  readonly requestTimeoutMs: number;
  /** The request line and headers, from the connection or the request's first byte. */
  readonly headersTimeoutMs: number;
  /** An idle keep-alive connection between two requests is closed after this long. */
  readonly keepAliveTimeoutMs: number;
}

/** Upstream limit sync (libs/sync): the provider's own per-model limits. */
export interface SyncConfig {
  /** Learned per-model limits join every request's reservation (429 upstream_rate_limit). */
  readonly enforceUpstreamLimits: boolean;
  /** Run the periodic sync job (one instance per interval when sharing Redis). */
  readonly backgroundSync: boolean;
  readonly intervalMs: number;
  /** Model for one minimal paid request when it saw no traffic in an interval; unset: never. */
  readonly probeModel: string | undefined;
  /** Learned limits not seen again for this long are dropped (no longer enforced). */
  readonly staleAfterMs: number;
}

export interface LimitsConfig {
  /** Default budget per scope type; per-id overrides live in the store. */
  readonly defaults: Readonly<Record<BudgetScopeType, BudgetPolicy>>;
  readonly enforceGlobalScope: boolean;
  /** Differences up to this many tokens between estimate and actual are not settled. */
  readonly tokenAdjustmentThreshold: number;
  readonly defaultMaxOutputTokens: number;
  readonly reservationTtlMs: number;
}

/**
 * The gateway's whole configuration, validated once at boot. Injected by class token:
 * `constructor(private readonly config: AppConfig)`.
 */
export abstract class AppConfig {
  abstract readonly nodeEnv: NodeEnv;
  abstract readonly host: string;
  abstract readonly port: number;
  abstract readonly logLevel: LogLevel;
  abstract readonly bodyLimitBytes: number;
  /** On SIGTERM/SIGINT: how long in-flight requests and streams may run before being cut. */
  abstract readonly shutdownGraceMs: number;
  abstract readonly store: StoreConfig;
  abstract readonly health: HealthConfig;
  /** Bearer token for the admin API; unset = the admin API is open (refused in production). */
  abstract readonly adminToken: string | undefined;
  /** Error reporting: unset = off. */
  abstract readonly sentryDsn: string | undefined;
  abstract readonly upstream: UpstreamConfig;
  abstract readonly limits: LimitsConfig;
  abstract readonly metrics: MetricsConfig;
  abstract readonly sync: SyncConfig;
  /** `shadow`: every budget decision is made and reported, none refuses a request. */
  abstract readonly limiterMode: LimiterMode;
  abstract readonly security: SecurityConfig;
  abstract readonly http: HttpServerConfig;
  /** POLICY_FILE, validated; unset without one. */
  abstract readonly policyFile: PolicyFileConfig | undefined;
}
