import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { BUCKET_STORE, type BucketStore } from '@tokenguard/bucket-store';

@ApiTags('status')
@Controller()
export class StatusController {
  constructor(@Inject(BUCKET_STORE) private readonly store: BucketStore) {}

  @Get()
  @ApiOperation({ summary: 'Name, status, time and store backend' })
  status(): { name: string; status: string; time: string; backend: string } {
    return {
      name: 'tokenguard',
      status: 'ok',
      time: new Date().toISOString(),
      backend: this.store.backend,
    };
  }
}
