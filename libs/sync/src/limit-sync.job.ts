import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  Optional,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { SHARED_STATE, type SharedState } from '@tokenguard/bucket-store';
import { AppConfig, type SyncConfig } from '@tokenguard/config';
import { GatewayMetrics } from '@tokenguard/metrics';
import { OpenAIProxyService } from '@tokenguard/openai-proxy';
import {
  type ModelLimitsView,
  SYNC_CLOCK,
  type SyncClock,
  UpstreamLimitsService,
} from './upstream-limits.service';

/** The interval's name in the SchedulerRegistry. */
export const SYNC_JOB_NAME = 'upstream-limit-sync';

/** The lease that picks the one instance that runs the job in an interval. */
export const SYNC_LEASE = 'upstream-limit-sync';

/** Where the last successful run is recorded for every instance's gauge. */
const STATUS_COLLECTION = 'upstream-sync';
const LAST_SUCCESS = 'lastSuccessAt';

/** The one paid request a probe makes: the smallest completion there is. */
const PROBE_BODY = (model: string) =>
  JSON.stringify({ model, messages: [{ role: 'user', content: 'ping' }], max_tokens: 1 });

export interface ProbeOutcome {
  readonly model: string;
  /** False when the model had traffic in the interval (its headers are fresh already). */
  readonly sent: boolean;
  /** The upstream's status; undefined when nothing was sent or the call failed. */
  readonly status?: number;
  readonly error?: string;
}

export interface SyncReport {
  /** Milliseconds since the epoch. */
  readonly ranAt: number;
  /** Models dropped because they were not seen for the staleness limit. */
  readonly expired: readonly string[];
  readonly probe: ProbeOutcome | undefined;
  readonly models: readonly ModelLimitsView[];
}

const wallClock: SyncClock = { now: () => Date.now() };

/**
 * The periodic upstream limit sync, every SYNC_INTERVAL_SECONDS while ENABLE_BACKGROUND_SYNC is
 * on (an unref'd interval in @nestjs/schedule's registry, cleared at shutdown). A run reads
 * what every instance learned, drops stale models, sets the learned bucket policies again,
 * and — only with SYNC_PROBE_MODEL, and only when that model saw no traffic during the last
 * interval — sends one minimal completion (max_tokens 1: a paid call) so that its headers are
 * learned.
 *
 * Instances sharing a store take a lease first (SET NX PX in Redis, renewed by its holder), so
 * one instance runs the job per interval and another takes over within about an interval
 * once the holder stops. The others count a `skipped` run and copy the holder's last success
 * time into their own gauge, so that `TokenGuardSyncStale` watches the fleet's sync.
 */
@Injectable()
export class LimitSyncJob implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('UpstreamSync');
  private readonly settings: SyncConfig;
  /** This instance, as lease holder. */
  private readonly holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly clock: SyncClock;
  private running: Promise<SyncReport> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    config: AppConfig,
    private readonly limits: UpstreamLimitsService,
    @Inject(SHARED_STATE) private readonly shared: SharedState,
    private readonly metrics: GatewayMetrics,
    private readonly proxy: OpenAIProxyService,
    private readonly scheduler: SchedulerRegistry,
    @Optional() @Inject(SYNC_CLOCK) clock?: SyncClock,
  ) {
    this.settings = config.sync;
    this.clock = clock ?? wallClock;
  }

  onApplicationBootstrap(): void {
    // What other instances learned is enforced from the start, not from the first run.
    this.limits
      .refresh()
      .catch((error: unknown) =>
        this.logger.warn(`Reading the shared upstream limits failed: ${String(error)}`),
      );
    if (!this.settings.backgroundSync) return;
    this.timer = setInterval(() => void this.tick(), this.settings.intervalMs);
    // The job alone must not keep the process alive.
    this.timer.unref();
    this.scheduler.addInterval(SYNC_JOB_NAME, this.timer);
  }

  onApplicationShutdown(): void {
    // The registry clears its intervals before shutdown; this covers a registry-less close.
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One scheduled run: only by the lease holder. Never throws. */
  async tick(): Promise<'ok' | 'error' | 'skipped'> {
    if (this.running !== undefined) {
      this.metrics.syncRun('skipped');
      return 'skipped';
    }
    let leased: boolean;
    try {
      leased = await this.shared.acquireLease(SYNC_LEASE, this.holder, this.leaseMs());
    } catch (error) {
      this.failed(error);
      return 'error';
    }
    if (!leased) {
      this.metrics.syncRun('skipped');
      await this.followHolder();
      return 'skipped';
    }
    try {
      await this.run();
      return 'ok';
    } catch {
      return 'error';
    }
  }

  /**
   * A run now, whoever holds the lease (`GET /sync/openai-limits`). Concurrent calls share one
   * run. Throws when the shared store is unreachable.
   */
  run(): Promise<SyncReport> {
    this.running ??= this.execute().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async execute(): Promise<SyncReport> {
    try {
      await this.limits.refresh();
      const expired = await this.limits.expireStale();
      await this.limits.reapply();
      const probe = await this.probe();
      await this.limits.idle();
      const ranAt = this.clock.now();
      await this.shared.writeRecord(STATUS_COLLECTION, LAST_SUCCESS, String(ranAt));
      this.metrics.syncRun('ok');
      this.metrics.syncSucceeded(ranAt);
      if (expired.length > 0) {
        this.logger.log(`Upstream limits of ${expired.join(', ')} expired (not seen lately).`);
      }
      return { ranAt, expired, probe, models: await this.limits.view() };
    } catch (error) {
      this.failed(error);
      throw error;
    }
  }

  /**
   * The probe: one completion of SYNC_PROBE_MODEL with max_tokens 1, when no answer for it
   * was seen during the last interval. The proxy hands its headers to the limits like any.
   */
  private async probe(): Promise<ProbeOutcome | undefined> {
    const model = this.settings.probeModel;
    if (model === undefined) return undefined;
    const seen = this.limits.lastSeen(model);
    if (seen !== undefined && this.clock.now() - seen < this.settings.intervalMs) {
      return { model, sent: false };
    }
    if (!this.proxy.configured) return { model, sent: false, error: 'upstream not configured' };
    try {
      const answer = await this.proxy.forward({
        method: 'POST',
        path: '/chat/completions',
        body: PROBE_BODY(model),
        requestId: `sync-probe-${randomUUID()}`,
        model,
      });
      return { model, sent: true, status: answer.status };
    } catch (error) {
      // A failed probe is reported, not a failed sync: the limits already known still hold.
      return { model, sent: true, error: error instanceof Error ? error.message : String(error) };
    }
  }

  /** Not the holder: keep up with the shared limits and the holder's last success. */
  private async followHolder(): Promise<void> {
    try {
      await this.limits.refresh();
      const status = await this.shared.readRecords(STATUS_COLLECTION);
      const at = Number(status.get(LAST_SUCCESS));
      if (Number.isFinite(at) && at > 0) this.metrics.syncSucceeded(at);
    } catch (error) {
      this.logger.debug(`Reading the shared sync state failed: ${String(error)}`);
    }
  }

  /**
   * Held a little longer than an interval, so that the holder's next tick (timers run late,
   * never early) renews it before it lapses.
   */
  private leaseMs(): number {
    const interval = this.settings.intervalMs;
    return interval + Math.min(5_000, Math.floor(interval / 4));
  }

  private failed(error: unknown): void {
    this.metrics.syncRun('error');
    this.logger.warn(`Upstream limit sync failed: ${String(error)}`);
  }
}
