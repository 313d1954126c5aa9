import { createHash } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import {
  BUCKET_STORE,
  type BucketStore,
  BucketStoreUnavailableError,
  FailoverBucketStore,
  isScopeType,
  SHARED_STATE,
  type ScopeRef,
  type SharedState,
} from '@tokenguard/bucket-store';
import { AppConfig, type PolicyFileConfig } from '@tokenguard/config';
import { AdminAudit } from './admin-audit';

/** Where the last applied version is recorded (a SharedState record: Redis or memory). */
const COLLECTION = 'policy-file';
const FIELD = 'applied';
/** While the store is down at boot, try again this often. */
const RETRY_MS = 5_000;
/** Budgets written at once: a large file should not take one round trip per entry. */
const CHUNK = 64;

interface AppliedVersion {
  readonly digest: string;
  /** `<type>:<id>` of every budget that version set: those a later version drops are deleted. */
  readonly scopes: readonly string[];
  readonly appliedAt: string;
}

export type ApplyOutcome = 'applied' | 'unchanged';

/** Why the file is applied: at boot (or its retry), or because the store lost it. */
type ApplyReason = 'boot' | 'restore';

/**
 * Applies POLICY_FILE to the store at boot, idempotently:
 *
 * - the store remembers the digest of the last version applied. An instance booting with the
 *   same file changes nothing, so restarts and scale-outs keep every run-time change made
 *   through the admin API since;
 * - a different version (any budget added, changed or removed, or a default a budget relies
 *   on) is applied in full: every budget it lists is set, and those the previous version
 *   listed and this one does not are deleted. Levels are kept (clamped to a lowered capacity).
 *
 * Instances booting together with the same new file each apply it; the writes are the same,
 * so the result is too. While the store is down the gateway boots anyway and applies the file
 * once the store answers.
 *
 * On Redis, the record of the version applied doubles as a marker of the store's data: a Redis
 * restarted empty (or flushed) has lost it with the budgets. Each instance checks for it every
 * `checkIntervalMs` and as soon as the store is back from an outage, and applies the file again
 * when it is gone. A record of another version is left alone: that is another instance's file
 * (a rolling deploy), applied at its boot, and two versions must not take turns.
 */
@Injectable()
export class PolicyFileService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('PolicyFile');
  private retry: NodeJS.Timeout | undefined;
  private check: NodeJS.Timeout | undefined;
  private stopWatching: (() => void) | undefined;
  /** The application in progress: the boot retry, the check and a recovery may coincide. */
  private applying: Promise<ApplyOutcome> | undefined;

  constructor(
    private readonly config: AppConfig,
    @Inject(BUCKET_STORE) private readonly store: BucketStore,
    @Inject(SHARED_STATE) private readonly shared: SharedState,
    private readonly admin: AdminAudit,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const file = this.config.policyFile;
    if (file === undefined) return;
    await this.applyOrRetry(file);
    // Only Redis can lose what was applied while the gateway runs; memory lives and dies with it.
    if (this.config.store.redis !== undefined) this.watchForLoss(file);
  }

  onApplicationShutdown(): void {
    clearTimeout(this.retry);
    this.retry = undefined;
    clearInterval(this.check);
    this.check = undefined;
    this.stopWatching?.();
    this.stopWatching = undefined;
  }

  /**
   * Applies the file again if the store holds no record of any version applied (its data was
   * lost). True when it did. Outages are not errors here: the next check or recovery retries.
   */
  private async restoreIfLost(file: PolicyFileConfig): Promise<boolean> {
    // Still applying, or not applied yet (the boot retry will): nothing to restore.
    if (this.applying !== undefined || this.retry !== undefined) return false;
    if (this.store instanceof FailoverBucketStore && !this.store.state.healthy) return false;
    try {
      if ((await this.shared.readRecords(COLLECTION)).has(FIELD)) return false;
      if (this.applying !== undefined) return false;
      this.logger.warn(
        `The budget store no longer holds ${file.path} (Redis restarted empty or was flushed): ` +
          'applying it again. Budgets changed through the admin API since are lost.',
      );
      return (await this.applyOnce(file, 'restore')) === 'applied';
    } catch (error) {
      if (error instanceof BucketStoreUnavailableError) return false;
      this.logger.error(`Checking that ${file.path} is still applied failed: ${String(error)}`);
      return false;
    }
  }

  async apply(file: PolicyFileConfig, reason: ApplyReason = 'boot'): Promise<ApplyOutcome> {
    const members = file.budgets.map((b) => `${b.scope}:${b.id}`);
    const digest = digestOf(file);
    const previous = parseVersion((await this.shared.readRecords(COLLECTION)).get(FIELD));
    if (previous?.digest === digest) {
      this.logger.log(
        `${file.path} is the version already applied; budgets changed at run time are kept.`,
      );
      return 'unchanged';
    }

    for (let i = 0; i < file.budgets.length; i += CHUNK) {
      await Promise.all(
        file.budgets
          .slice(i, i + CHUNK)
          .map((b) => this.store.setPolicy({ type: b.scope, id: b.id }, b.policy)),
      );
    }
    const listed = new Set(members);
    const dropped = (previous?.scopes ?? [])
      .filter((member) => !listed.has(member))
      .map(scopeOfMember)
      .filter((scope): scope is ScopeRef => scope !== undefined);
    for (const scope of dropped) await this.store.deletePolicy(scope);

    const version: AppliedVersion = {
      digest,
      scopes: members,
      appliedAt: new Date().toISOString(),
    };
    await this.shared.writeRecord(COLLECTION, FIELD, JSON.stringify(version));
    this.admin.record('policy-file', 'policy_file_applied', {
      file: file.path,
      digest: digest.slice(0, 12),
      budgets: members.length,
      removed: dropped.length,
      reason,
    });
    this.logger.log(
      `Applied ${file.path}: ${members.length} budgets set, ${dropped.length} removed.`,
    );
    return 'applied';
  }

  private applyOnce(file: PolicyFileConfig, reason: ApplyReason): Promise<ApplyOutcome> {
    this.applying ??= this.apply(file, reason).finally(() => {
      this.applying = undefined;
    });
    return this.applying;
  }

  private watchForLoss(file: PolicyFileConfig): void {
    this.check = setInterval(() => void this.restoreIfLost(file), file.checkIntervalMs);
    this.check.unref();
    if (this.store instanceof FailoverBucketStore) {
      // Back from an outage is when a Redis that restarted empty is first seen: check at once.
      this.stopWatching = this.store.watchTransitions((event) => {
        if (event.healthy) void this.restoreIfLost(file);
      });
    }
  }

  private async applyOrRetry(file: PolicyFileConfig): Promise<void> {
    this.retry = undefined;
    try {
      await this.applyOnce(file, 'boot');
    } catch (error) {
      if (!(error instanceof BucketStoreUnavailableError)) throw error;
      this.logger.warn(
        `The budget store is unavailable; ${file.path} will be applied once it answers ` +
          `(retrying every ${RETRY_MS / 1000} s).`,
      );
      this.retry = setTimeout(() => {
        this.applyOrRetry(file).catch((failure: unknown) =>
          this.logger.error(`Applying ${file.path} failed: ${String(failure)}`),
        );
      }, RETRY_MS);
      this.retry.unref();
    }
  }
}

/** Over the budgets as applied (defaults filled in), in file order. */
function digestOf(file: PolicyFileConfig): string {
  const canonical = file.budgets.map((b) => [
    b.scope,
    b.id,
    b.policy.capacity,
    b.policy.refillPerSec,
  ]);
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

function parseVersion(raw: string | undefined): AppliedVersion | undefined {
  if (raw === undefined) return undefined;
  try {
    const parsed = JSON.parse(raw) as Partial<AppliedVersion>;
    if (typeof parsed.digest !== 'string' || !Array.isArray(parsed.scopes)) return undefined;
    return parsed as AppliedVersion;
  } catch {
    // Unreadable: treated as never applied, so the file is applied again.
    return undefined;
  }
}

function scopeOfMember(member: string): ScopeRef | undefined {
  const colon = member.indexOf(':');
  const type = member.slice(0, colon);
  return colon > 0 && isScopeType(type) ? { type, id: member.slice(colon + 1) } : undefined;
}
