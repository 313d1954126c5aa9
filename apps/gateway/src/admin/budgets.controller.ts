import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Post,
  Query,
  Req,
} from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import {
  BUCKET_STORE,
  type BucketStore,
  type BudgetScopeType,
  GLOBAL_SCOPE_ID,
  type PolicyOverride,
  type PolicyPatch,
  type ScopeRef,
  scopeKey,
} from '@tokenguard/bucket-store';
import { OpenAIException } from '@tokenguard/common';
import { AppConfig } from '@tokenguard/config';
import { OpenAIErrorResponse } from '../openapi/openai-error.response';
import { AdminAudit } from './admin-audit';
import { AdminRoute } from './admin-route.decorator';
import { type BucketView, BucketViewDto, toBucketView } from './bucket-view';
import { SetBudgetDto } from './dto/set-budget.dto';
import { SetRefillRateDto } from './dto/set-refill-rate.dto';
import {
  BudgetDto,
  BudgetPageDto,
  DeletedBudgetDto,
  ListBudgetsQueryDto,
} from './dto/budget-views.dto';
import { budgetScopeOf, GLOBAL_SCOPE, PER_ID_SCOPE_TYPES } from './scope-params';

const DEFAULT_PAGE = 50;

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
  constructor(
    @Inject(BUCKET_STORE) private readonly store: BucketStore,
    private readonly config: AppConfig,
    private readonly admin: AdminAudit,
  ) {}

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
    this.admin.change(request, 'budget_set', { scope: view.scope, change: patch });
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
    this.admin.change(request, 'refill_rate_set', { scope: view.scope, change: patch });
    return view;
  }

  @Get('budgets')
  @ApiOperation({
    summary: 'List per-id budgets',
    description:
      'Every scope instance with a budget of its own (set here or by POLICY_FILE), in ' +
      '`<type>:<id>` order, a page at a time. Scopes without one follow their type default.',
  })
  @ApiOkResponse({ type: BudgetPageDto })
  async list(@Query() query: ListBudgetsQueryDto): Promise<BudgetPageDto> {
    const page = await this.store.listPolicies({
      types: query.scope === undefined ? BUDGET_TYPES : [query.scope],
      after: query.cursor === undefined ? undefined : decodeCursor(query.cursor),
      limit: query.limit ?? DEFAULT_PAGE,
    });
    return {
      data: page.overrides.map((o: PolicyOverride) => this.budget(o.scope, o.override)),
      nextCursor: page.next === null ? null : encodeCursor(page.next),
    };
  }

  @Get('budgets/global')
  @ApiOperation({ summary: 'Read the global budget' })
  @ApiOkResponse({ type: BudgetDto })
  readGlobal(): Promise<BudgetDto> {
    return this.read(GLOBAL_SCOPE);
  }

  @Get('budgets/:scope/:id')
  @ApiOperation({
    summary: "Read one scope's budget",
    description: 'Its override (null without one), its type default and the effective policy.',
  })
  @ApiParam({ name: 'scope', enum: PER_ID_SCOPE_TYPES })
  @ApiParam({ name: 'id', example: 'blue' })
  @ApiOkResponse({ type: BudgetDto })
  readOne(@Param('scope') scope: string, @Param('id') id: string): Promise<BudgetDto> {
    return this.read(budgetScopeOf(scope, id, 'GET /config/budgets/global'));
  }

  @Delete('budgets/global')
  @ApiOperation({
    summary: 'Delete the global override',
    description: 'The global bucket follows CAP_GLOBAL / RATE_GLOBAL (or POLICY_FILE) again.',
  })
  @ApiOkResponse({ type: DeletedBudgetDto })
  deleteGlobal(@Req() request: FastifyRequest): Promise<DeletedBudgetDto> {
    return this.delete(GLOBAL_SCOPE, request);
  }

  @Delete('budgets/:scope/:id')
  @ApiOperation({
    summary: "Delete one scope's override",
    description:
      'The scope follows its type default again; its level is kept, clamped to the default ' +
      'capacity. Idempotent: without an override, nothing changes (`deleted: false`).',
  })
  @ApiParam({ name: 'scope', enum: PER_ID_SCOPE_TYPES })
  @ApiParam({ name: 'id', example: 'blue' })
  @ApiOkResponse({ type: DeletedBudgetDto })
  deleteOne(
    @Param('scope') scope: string,
    @Param('id') id: string,
    @Req() request: FastifyRequest,
  ): Promise<DeletedBudgetDto> {
    return this.delete(budgetScopeOf(scope, id, 'DELETE /config/budgets/global'), request);
  }

  private async read(scope: ScopeRef): Promise<BudgetDto> {
    return this.budget(scope, await this.store.getOverride(scope));
  }

  private async delete(scope: ScopeRef, request: FastifyRequest): Promise<DeletedBudgetDto> {
    const { deleted, bucket } = await this.store.deletePolicy(scope);
    // Only a change is a change: a repeated DELETE neither logs nor counts.
    if (deleted) this.admin.change(request, 'budget_deleted', { scope: scopeKey(scope) });
    return { deleted, budget: this.budget(scope, null), bucket: toBucketView(bucket) };
  }

  private budget(scope: ScopeRef, override: PolicyPatch | null): BudgetDto {
    const type = scope.type as BudgetScopeType;
    const fallback = this.config.limits.defaults[type];
    return {
      scope: scopeKey(scope),
      type,
      id: scope.id,
      override,
      default: { capacity: fallback.capacity, refillPerSec: fallback.refillPerSec },
      effective: {
        capacity: override?.capacity ?? fallback.capacity,
        refillPerSec: override?.refillPerSec ?? fallback.refillPerSec,
      },
    };
  }
}

const BUDGET_TYPES: readonly BudgetScopeType[] = ['global', ...PER_ID_SCOPE_TYPES];

/**
 * Cursors are opaque to clients (base64url of the last `<type>:<id>` listed), so the listing
 * order can change later without breaking scripts that only pass them back.
 */
function encodeCursor(member: string): string {
  return Buffer.from(member, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const member = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[a-z_]+:[\x21-\x7e]{1,256}$/.test(member)) {
    throw OpenAIException.badRequest(
      'cursor is not a cursor this API returned.',
      'cursor',
      'invalid_value',
    );
  }
  return member;
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
