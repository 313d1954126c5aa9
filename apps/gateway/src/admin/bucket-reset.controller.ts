import { Controller, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { BUCKET_STORE, type BucketStore, type ScopeRef } from '@tokenguard/bucket-store';
import { OpenAIErrorResponse } from '../openapi/openai-error.response';
import { AdminAudit } from './admin-audit';
import { AdminRoute } from './admin-route.decorator';
import { type BucketView, BucketViewDto, toBucketView } from './bucket-view';
import { budgetScopeOf, GLOBAL_SCOPE, PER_ID_SCOPE_TYPES } from './scope-params';

/** Refills a bucket to its capacity at once (after an incident, or to unblock a user). */
@ApiTags('admin')
@AdminRoute()
@ApiBadRequestResponse({ description: 'Unknown scope or invalid id', type: OpenAIErrorResponse })
@ApiServiceUnavailableResponse({
  description: 'The budget store is down (changes must reach every instance)',
  type: OpenAIErrorResponse,
})
@Controller('buckets')
export class BucketResetController {
  constructor(
    @Inject(BUCKET_STORE) private readonly store: BucketStore,
    private readonly admin: AdminAudit,
  ) {}

  @Post('global/reset')
  @HttpCode(200)
  @ApiOperation({ summary: 'Refill the global bucket to full' })
  @ApiOkResponse({ type: BucketViewDto })
  resetGlobal(@Req() request: FastifyRequest): Promise<BucketView> {
    return this.reset(GLOBAL_SCOPE, request);
  }

  @Post(':scope/:id/reset')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Refill one bucket to full',
    description: 'Its debt, if any, is forgiven; its budget is unchanged.',
  })
  @ApiParam({ name: 'scope', enum: PER_ID_SCOPE_TYPES })
  @ApiParam({ name: 'id', example: 'alice' })
  @ApiOkResponse({ type: BucketViewDto })
  resetOne(
    @Param('scope') scope: string,
    @Param('id') id: string,
    @Req() request: FastifyRequest,
  ): Promise<BucketView> {
    return this.reset(budgetScopeOf(scope, id, 'POST /buckets/global/reset'), request);
  }

  private async reset(scope: ScopeRef, request: FastifyRequest): Promise<BucketView> {
    const view = toBucketView(await this.store.resetBucket(scope));
    this.admin.change(request, 'bucket_reset', { scope: view.scope });
    return view;
  }
}
