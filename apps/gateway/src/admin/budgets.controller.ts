import { Body, Controller, HttpCode, Inject, Post } from '@nestjs/common';
import {
  BUCKET_STORE,
  type BucketStore,
  GLOBAL_SCOPE_ID,
  type ScopeRef,
} from '@tokenguard/bucket-store';
import { OpenAIException } from '@tokenguard/common';
import { type BucketView, toBucketView } from './bucket-view';
import { SetBudgetDto } from './dto/set-budget.dto';
import { SetRefillRateDto } from './dto/set-refill-rate.dto';

/** Per-id budget overrides, kept in the store so every instance enforces the same numbers. */
@Controller('config')
export class BudgetsController {
  constructor(@Inject(BUCKET_STORE) private readonly store: BucketStore) {}

  @Post('budget')
  @HttpCode(200)
  async setBudget(@Body() dto: SetBudgetDto): Promise<BucketView> {
    const scope = budgetScope(dto);
    const snapshot = await this.store.setPolicy(scope, {
      capacity: dto.capacity,
      ...(dto.refillPerSec === undefined ? {} : { refillPerSec: dto.refillPerSec }),
    });
    return toBucketView(snapshot);
  }

  @Post('refill-rate')
  @HttpCode(200)
  async setRefillRate(@Body() dto: SetRefillRateDto): Promise<BucketView> {
    const snapshot = await this.store.setPolicy(
      { type: 'user', id: dto.userId },
      { refillPerSec: dto.refillPerSec },
    );
    return toBucketView(snapshot);
  }
}

function budgetScope(dto: SetBudgetDto): ScopeRef {
  if (dto.scope !== 'global') return { type: dto.scope, id: dto.id as string };
  if (dto.id !== undefined && dto.id !== GLOBAL_SCOPE_ID) {
    throw OpenAIException.badRequest(
      'The global scope has a single bucket: omit id.',
      'id',
      'invalid_value',
    );
  }
  return { type: 'global', id: GLOBAL_SCOPE_ID };
}
