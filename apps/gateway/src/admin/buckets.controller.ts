import { Controller, Get, Inject, Param } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import {
  BUCKET_STORE,
  type BucketStore,
  GLOBAL_SCOPE_ID,
  isScopeType,
  isUpstreamId,
  isUpstreamScopeType,
} from '@tokenguard/bucket-store';
import { OpenAIException } from '@tokenguard/common';
import { IDENTITY_PATTERN } from '@tokenguard/limiter';
import { OpenAIErrorResponse } from '../openapi/openai-error.response';
import { AdminRoute } from './admin-route.decorator';
import { type BucketView, BucketViewDto, toBucketView } from './bucket-view';

@ApiTags('admin')
@AdminRoute()
@ApiBadRequestResponse({ description: 'Unknown scope or invalid id', type: OpenAIErrorResponse })
@Controller('buckets')
export class BucketsController {
  constructor(@Inject(BUCKET_STORE) private readonly store: BucketStore) {}

  @Get('global')
  @ApiOperation({ summary: 'Read the global bucket' })
  @ApiOkResponse({ type: BucketViewDto })
  async global(): Promise<BucketView> {
    return toBucketView(await this.store.getBucket({ type: 'global', id: GLOBAL_SCOPE_ID }));
  }

  @Get(':scope/:id')
  @ApiOperation({ summary: 'Read one bucket (a never-used bucket reads full)' })
  @ApiParam({
    name: 'scope',
    enum: ['team', 'rolegroup', 'role', 'user', 'upstream', 'upstream_requests'],
    description:
      "`upstream`: a model's learned provider token limit (id = the model name); " +
      '`upstream_requests`: its request limit.',
  })
  @ApiParam({ name: 'id', example: 'alice' })
  @ApiOkResponse({ type: BucketViewDto })
  async one(@Param('scope') scope: string, @Param('id') id: string): Promise<BucketView> {
    if (!isScopeType(scope) || scope === 'global') {
      throw OpenAIException.badRequest(
        'Unknown scope: use team, rolegroup, role, user, upstream or upstream_requests ' +
          '(or GET /buckets/global).',
        'scope',
        'invalid_value',
      );
    }
    if (isUpstreamScopeType(scope)) {
      // Model names are wider than identities (`ft:gpt-4o-mini:org::id`).
      if (!isUpstreamId(id)) {
        throw OpenAIException.badRequest(
          'Invalid model: use 1 to 256 printable characters without spaces.',
          'id',
          'invalid_value',
        );
      }
      return toBucketView(await this.store.getBucket({ type: scope, id }));
    }
    if (!IDENTITY_PATTERN.test(id)) {
      throw OpenAIException.badRequest(
        'Invalid id: use 1 to 128 characters from A-Z a-z 0-9 . _ @ + -.',
        'id',
        'invalid_value',
      );
    }
    return toBucketView(await this.store.getBucket({ type: scope, id }));
  }
}
