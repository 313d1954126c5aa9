import { Injectable, Logger } from '@nestjs/common';
import { type AdminAction, GatewayMetrics } from '@tokenguard/metrics';
import { adminPrincipalOf } from './admin-auth.guard';

/**
 * Every change to budgets, buckets and API keys goes through here: one log line saying who
 * (the admin token's fingerprint, never the token; `policy-file` for the file applied at boot)
 * and what, and one count in `tokenguard_admin_changes_total{action}`.
 */
@Injectable()
export class AdminAudit {
  private readonly logger = new Logger('Admin');

  constructor(private readonly metrics: GatewayMetrics) {}

  /** A change made through the admin API by the caller of `request`. */
  change(
    request: { readonly id: string },
    action: AdminAction,
    details: Record<string, unknown>,
  ): void {
    this.record(adminPrincipalOf(request).tokenId, action, { ...details, requestId: request.id });
  }

  record(by: string, action: AdminAction, details: Record<string, unknown>): void {
    this.metrics.adminChange(action);
    this.logger.log({ msg: 'admin change', action, by, ...details });
  }
}
