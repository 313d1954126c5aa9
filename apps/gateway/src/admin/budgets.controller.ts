import { Body, Controller, HttpCode, Inject, Logger, Post, Req } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import {
  BUCKET_STORE,
  type BucketStore,
  GLOBAL_SCOPE_ID,
  type ScopeRef,
} from '@tokenguard/bucket-store';
import { OpenAIException } from '@tokenguard/common';
import { OpenAIErrorResponse } from '../openapi/openai-error.response';
import { adminPrincipalOf } from './admin-auth.guard';
import { AdminRoute } from './admin-route.decorator';
import { type BucketView, BucketViewDto, toBucketView } from './bucket-view';
import { SetBudgetDto } from './dto/set-budget.dto';
import { SetRefillRateDto } from './dto/set-refill-rate.dto';

/** Per-id budget overrides, kept in the store so every instance enforces the same numbers. */
@ApiTags('admin')
@AdminRoute()
@ApiBadRequestResponse({ description: 'Invalid budget', type: OpenAIErrorResponse })
@ApiServiceUnavailableResponse({
  description: 'The budget store is down (changes must reach every instance)',
  type: OpenAIErrorResponse,
})
@Controller('config')
export class BudgetsController {
  private readonly logger = new Logger('Admin');

  constructor(@Inject(BUCKET_STORE) private readonly store: BucketStore) {}

  @Post('budget')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Set a budget',
    description:
      'Sets the capacity (and optionally the refill rate) of one scope instance, for every ' +
      'gateway instance at once. The current level is kept, clamped to a lowered capacity.',
  })
  @ApiOkResponse({ type: BucketViewDto })
  async setBudget(@Body() dto: SetBudgetDto, @Req() request: FastifyRequest): Promise<BucketView> {
    const scope = budgetScope(dto);
    const patch = {
      capacity: dto.capacity,
      ...(dto.refillPerSec === undefined ? {} : { refillPerSec: dto.refillPerSec }),
    };
    const view = toBucketView(await this.store.setPolicy(scope, patch));
    this.audit(request, 'budget_set', view.scope, patch);
    return view;
  }

  @Post('refill-rate')
  @HttpCode(200)
  @ApiOperation({ summary: "Set a user's refill rate" })
  @ApiOkResponse({ type: BucketViewDto })
  async setRefillRate(
    @Body() dto: SetRefillRateDto,
    @Req() request: FastifyRequest,
  ): Promise<BucketView> {
    const patch = { refillPerSec: dto.refillPerSec };
    const view = toBucketView(await this.store.setPolicy({ type: 'user', id: dto.userId }, patch));
    this.audit(request, 'refill_rate_set', view.scope, patch);
    return view;
  }

  /** Who changed what: the token's fingerprint (never the token) and the new values. */
  private audit(request: FastifyRequest, action: string, scope: string, change: object): void {
    this.logger.log({
      msg: 'admin change',
      action,
      by: adminPrincipalOf(request).tokenId,
      scope,
      change,
    });
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
