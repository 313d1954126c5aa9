import { EventEmitter } from 'node:events';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadAppConfig } from '@tokenguard/config';
import type { SettlementService } from '@tokenguard/limiter';
import type { OpenAIProxyService } from '@tokenguard/openai-proxy';
import { ShutdownService } from './shutdown.service';

type Hook = (request: unknown, reply: FakeReply, done: () => void) => void;

class FakeReply {
  readonly raw = new EventEmitter();
  readonly headers: Record<string, string> = {};
  statusCode = 200;
  sent: unknown;
  header(name: string, value: string): this {
    this.headers[name] = value;
    return this;
  }
  status(code: number): this {
    this.statusCode = code;
    return this;
  }
  type(value: string): this {
    return this.header('content-type', value);
  }
  send(body: unknown): this {
    this.sent = body;
    return this;
  }
}

function setup(graceMs: number, unsettled = 0) {
  const server = {
    close: jest.fn(),
    closeIdleConnections: jest.fn(),
    closeAllConnections: jest.fn(),
  };
  const hooks: Record<string, Hook> = {};
  const app = {
    getHttpServer: () => server,
    getHttpAdapter: () => ({
      getInstance: () => ({ addHook: (name: string, hook: Hook) => (hooks[name] = hook) }),
    }),
  } as unknown as NestFastifyApplication;
  const settlement = { whenSettled: jest.fn((_ms: number) => Promise.resolve(unsettled)) };
  const proxy = { abortInFlight: jest.fn(() => Promise.resolve()) };
  const service = new ShutdownService(
    loadAppConfig({ SHUTDOWN_GRACE_MS: String(graceMs) }),
    settlement as unknown as SettlementService,
    proxy as unknown as OpenAIProxyService,
  );
  service.install(app);
  /** A request arriving: its reply, and whether it went on to its handler. */
  const arrive = (url: string) => {
    const reply = new FakeReply();
    let passed = false;
    hooks.onRequest({ url }, reply, () => (passed = true));
    return { reply, passed, close: () => reply.raw.emit('close') };
  };
  return { service, server, settlement, proxy, arrive };
}

describe('ShutdownService', () => {
  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  it('with nothing in flight: unready, listener closed, settled, done at once', async () => {
    const { service, server, settlement, proxy } = setup(10_000);
    expect(service.draining).toBe(false);
    const drained = service.drain('SIGTERM');
    expect(service.draining).toBe(true);
    expect(server.close).toHaveBeenCalled();
    expect(server.closeIdleConnections).toHaveBeenCalled();
    await expect(drained).resolves.toEqual({ cut: 0, unsettled: 0 });
    expect(settlement.whenSettled).toHaveBeenCalled();
    expect(proxy.abortInFlight).not.toHaveBeenCalled();
    // Once only.
    expect(service.drain('SIGINT')).toBe(drained);
  });

  it('waits for the requests in flight, dropping connections as they go idle', async () => {
    const { service, server, proxy, arrive } = setup(10_000);
    const first = arrive('/v1/chat/completions');
    const second = arrive('/v1/chat/completions');
    expect(first.passed && second.passed).toBe(true);
    let done = false;
    const drained = service.drain('SIGTERM').then((report) => {
      done = true;
      return report;
    });
    first.close();
    await new Promise((resolve) => setImmediate(resolve));
    expect(server.closeIdleConnections).toHaveBeenCalledTimes(2);
    expect(done).toBe(false);
    second.close();
    await expect(drained).resolves.toEqual({ cut: 0, unsettled: 0 });
    expect(proxy.abortInFlight).not.toHaveBeenCalled();
  });

  it('cuts what outlives the grace period, and the upstream calls with it', async () => {
    const { service, server, proxy, arrive } = setup(50, 1);
    const slow = arrive('/v1/chat/completions');
    server.closeAllConnections.mockImplementation(() => slow.close());
    const started = performance.now();
    await expect(service.drain('SIGTERM')).resolves.toEqual({ cut: 1, unsettled: 1 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    expect(server.closeAllConnections).toHaveBeenCalled();
    expect(proxy.abortInFlight).toHaveBeenCalled();
  });

  it('aborts, past the grace period, upstream calls whose clients have left', async () => {
    const { service, settlement, proxy } = setup(50, 1);
    await expect(service.drain('SIGTERM')).resolves.toEqual({ cut: 0, unsettled: 1 });
    // First the rest of the grace period, then the settlements after the abort.
    expect(settlement.whenSettled.mock.calls[0]).toEqual([expect.any(Number)]);
    expect(proxy.abortInFlight).toHaveBeenCalledTimes(1);
    expect(settlement.whenSettled).toHaveBeenCalledTimes(2);
  });

  it('while draining, answers probes and turns other requests away with 503', async () => {
    const { service, arrive } = setup(10_000);
    const before = arrive('/v1/models');
    expect(before.passed).toBe(true);
    expect(before.reply.headers.connection).toBeUndefined();
    const drained = service.drain('SIGTERM');
    const probe = arrive('/health/ready?verbose=1');
    expect(probe.passed).toBe(true);
    expect(probe.reply.headers.connection).toBe('close');
    const call = arrive('/v1/chat/completions');
    expect(call.passed).toBe(false);
    expect(call.reply.statusCode).toBe(503);
    expect(call.reply.headers).toMatchObject({ connection: 'close', 'retry-after': '1' });
    expect(call.reply.sent).toEqual({
      error: {
        message: 'The gateway is shutting down; retry the request.',
        type: 'server_error',
        code: 'shutting_down',
        param: null,
      },
    });
    for (const request of [before, probe, call]) request.close();
    await expect(drained).resolves.toEqual({ cut: 0, unsettled: 0 });
  });
});
