import { Body, Controller, Delete, Get, HttpCode, Post } from '@nestjs/common';
import type { MockBehaviour } from './mock-behaviour';
import { MockStateService } from './mock-state.service';
import type { RecordedRequest } from './request-recorder';

/**
 * Run-time control for a mock running in its own process (demo, manual tests). The
 * in-process API (`MockOpenAIServer`) does the same without HTTP.
 */
@Controller('_mock')
export class MockAdminController {
  constructor(private readonly state: MockStateService) {}

  @Get('config')
  getConfig(): Readonly<MockBehaviour> {
    return this.state.behaviour;
  }

  /** Merges the posted knobs into the global ones; answers with the result. */
  @Post('config')
  @HttpCode(200)
  setConfig(@Body() patch: unknown): Readonly<MockBehaviour> {
    return this.state.setBehaviour(patch ?? {});
  }

  /** Startup knobs again, empty rate-limit counters and recorder. */
  @Post('reset')
  @HttpCode(200)
  reset(): Readonly<MockBehaviour> {
    return this.state.reset();
  }

  @Get('requests')
  requests(): { data: RecordedRequest[] } {
    return { data: this.state.recorder.list() };
  }

  @Delete('requests')
  @HttpCode(204)
  clearRequests(): void {
    this.state.recorder.clear();
  }
}
