import { Controller, Get, Inject, Param } from '@nestjs/common';
import {
  BUCKET_STORE,
  type BucketStore,
  GLOBAL_SCOPE_ID,
  isScopeType,
} from '@tokenguard/bucket-store';
import { OpenAIException } from '@tokenguard/common';
import { IDENTITY_PATTERN } from '@tokenguard/limiter';
import { type BucketView, toBucketView } from './bucket-view';

@Controller('buckets')
export class BucketsController {
  constructor(@Inject(BUCKET_STORE) private readonly store: BucketStore) {}

  @Get('global')
  async global(): Promise<BucketView> {
    return toBucketView(await this.store.getBucket({ type: 'global', id: GLOBAL_SCOPE_ID }));
  }

  @Get(':scope/:id')
  async one(@Param('scope') scope: string, @Param('id') id: string): Promise<BucketView> {
    if (!isScopeType(scope) || scope === 'global') {
      throw OpenAIException.badRequest(
        'Unknown scope: use team, rolegroup, role or user (or GET /buckets/global).',
        'scope',
        'invalid_value',
      );
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
