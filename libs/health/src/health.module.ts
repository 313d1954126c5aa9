import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { StoreHealthIndicator } from './store.health';

/** Terminus and the gateway's indicators; needs BUCKET_STORE from the global store module. */
@Module({
  imports: [TerminusModule.forRoot({ logger: false })],
  providers: [StoreHealthIndicator],
  exports: [TerminusModule, StoreHealthIndicator],
})
export class HealthModule {}
