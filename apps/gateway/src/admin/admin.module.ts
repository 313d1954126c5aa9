import { Module } from '@nestjs/common';
import { AdminAudit } from './admin-audit';
import { BucketResetController } from './bucket-reset.controller';
import { KeysController } from './keys.controller';
import { PolicyFileService } from './policy-file.service';

/**
 * The admin API beyond reading and setting budgets: bucket resets, API keys and the policy
 * file applied at boot. Every change goes through AdminAudit (exported for the budget routes).
 */
@Module({
  controllers: [BucketResetController, KeysController],
  providers: [AdminAudit, PolicyFileService],
  exports: [AdminAudit],
})
export class AdminModule {}
