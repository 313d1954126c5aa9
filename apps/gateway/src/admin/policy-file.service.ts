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
 */
@Injectable()
export class PolicyFileService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('PolicyFile');
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: AppConfig,
    @Inject(BUCKET_STORE) private readonly store: BucketStore,
    @Inject(SHARED_STATE) private readonly shared: SharedState,
    private readonly admin: AdminAudit,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const file = this.config.policyFile;
    if (file !== undefined) await this.applyOrRetry(file);
  }

  onApplicationShutdown(): void {
    clearTimeout(this.retry);
    this.retry = undefined;
  }

  async apply(file: PolicyFileConfig): Promise<ApplyOutcome> {
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
    });
    this.logger.log(
      `Applied ${file.path}: ${members.length} budgets set, ${dropped.length} removed.`,
    );
    return 'applied';
  }

  private async applyOrRetry(file: PolicyFileConfig): Promise<void> {
    try {
      await this.apply(file);
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
