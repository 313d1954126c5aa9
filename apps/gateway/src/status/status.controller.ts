import { Controller, Get, Inject } from '@nestjs/common';
import { BUCKET_STORE, type BucketStore } from '@tokenguard/bucket-store';

@Controller()
export class StatusController {
  constructor(@Inject(BUCKET_STORE) private readonly store: BucketStore) {}

  @Get()
  status(): { name: string; status: string; time: string; backend: string } {
    return {
      name: 'tokenguard',
      status: 'ok',
      time: new Date().toISOString(),
      backend: this.store.backend,
    };
  }
}
