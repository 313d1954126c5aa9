import type { Server } from 'node:http';
import { Injectable, Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyRequest } from 'fastify';
import { openAIErrorBody } from '@tokenguard/common';
import { AppConfig } from '@tokenguard/config';
import { SettlementService } from '@tokenguard/limiter';
import { OpenAIProxyService } from '@tokenguard/openai-proxy';

/** How long settlements may take once the upstream calls are cut (store commands time out sooner). */
const SETTLE_WAIT_MS = 5000;

/** For the responses of cut requests to report their close (a turn or two of the loop). */
const CUT_WAIT_MS = 1000;

/** Probes keep answering while draining: readiness says 503 itself, liveness stays 200. */
const PROBE_PATHS = new Set(['/health/live', '/health/ready']);

export interface DrainReport {
  /** Requests still running when the grace period ended, and cut. */
  readonly cut: number;
  /** Reservations that could not be settled (they expire with RESERVATION_TTL_SECONDS). */
  readonly unsettled: number;
}

/**
 * The first half of a graceful shutdown, run before Nest closes the modules (see
 * shutdown-signals.ts). In order: readiness turns false; the listener stops accepting
 * connections and idle keep-alive ones are closed; requests and streams in flight get
 * SHUTDOWN_GRACE_MS to finish; whatever is left is cut (a stream settles like a client that
 * left: prompt plus the tokens streamed); then it waits until every reservation is settled, so
 * that the store can be closed with nothing open.
 */
@Injectable()
export class ShutdownService {
  private readonly logger = new Logger('Shutdown');
  private server: Server | undefined;
  private inFlight = 0;
  private readonly idleWaiters = new Set<() => void>();
  private drainingSince: number | undefined;
  private drained: Promise<DrainReport> | undefined;

  constructor(
    private readonly config: AppConfig,
    private readonly settlement: SettlementService,
    private readonly proxy: OpenAIProxyService,
  ) {}

  /** True from the moment a shutdown starts: readiness answers 503. */
  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  /** When draining started (epoch ms). */
  get drainingSinceMs(): number | undefined {
    return this.drainingSince;
  }

  /** Counts requests in flight and turns away new ones while draining. Before listen(). */
  install(app: NestFastifyApplication): void {
    this.server = app.getHttpServer();
    const fastify = app.getHttpAdapter().getInstance();
    fastify.addHook('onRequest', (request, reply, done) => {
      this.inFlight += 1;
      reply.raw.once('close', () => this.requestClosed());
      if (!this.draining) return done();
      // Said on every answer from now on, so that no client keeps the connection.
      void reply.header('connection', 'close');
      if (PROBE_PATHS.has(pathOf(request))) return done();
      // A request on a connection opened before the shutdown: nothing is reserved, and the
      // SDKs retry a 503 (on another instance, once the load balancer has caught up).
      void reply
        .status(503)
        .header('retry-after', '1')
        .type('application/json')
        .send(
          openAIErrorBody(503, {
            message: 'The gateway is shutting down; retry the request.',
            code: 'shutting_down',
          }),
        );
    });
    // Answers already under way when draining started: no keep-alive either.
    fastify.addHook('onSend', (_request, reply, payload, done) => {
      if (this.draining) void reply.header('connection', 'close');
      done(null, payload);
    });
  }

  /** Starts draining (once; later calls share the first). Resolves when it is over. */
  drain(reason: string): Promise<DrainReport> {
    this.drained ??= this.run(reason);
    return this.drained;
  }

  private async run(reason: string): Promise<DrainReport> {
    const graceMs = this.config.shutdownGraceMs;
    this.drainingSince = Date.now();
    this.logger.log(
      `${reason}: readiness is now false; draining ${this.inFlight} request(s) ` +
        `for up to ${graceMs} ms (SHUTDOWN_GRACE_MS).`,
    );
    // No new connections from here on; Node also closes the idle keep-alive ones.
    this.server?.close();
    this.server?.closeIdleConnections();

    const deadline = performance.now() + graceMs;
    const finished = await this.requestsFinished(graceMs);
    const cut = this.inFlight;
    if (!finished) {
      this.logger.warn(`Grace period over: cutting ${cut} request(s) still running.`);
    }
    // The requests left, and connections that never sent a whole request.
    this.server?.closeAllConnections();
    // Their responses close first, so that a cut stream settles as its client leaving.
    if (!finished) await this.requestsFinished(CUT_WAIT_MS);
    // An upstream call whose client has gone (cut, or left) settles when the call ends: it may
    // do so within the grace period, then it is aborted, or closing the upstream pool would
    // wait for it (up to UPSTREAM_TIMEOUT_MS).
    let unsettled = await this.settlement.whenSettled(Math.max(0, deadline - performance.now()));
    if (unsettled > 0) {
      await this.proxy.abortInFlight();
      unsettled = await this.settlement.whenSettled(SETTLE_WAIT_MS);
    }
    if (unsettled > 0) {
      this.logger.error(
        `${unsettled} reservation(s) could not be settled; they stay charged until ` +
          'RESERVATION_TTL_SECONDS expires them.',
      );
    } else {
      this.logger.log('Every request is over and every reservation settled.');
    }
    return { cut, unsettled };
  }

  private requestClosed(): void {
    this.inFlight -= 1;
    if (!this.draining) return;
    // A keep-alive connection whose answer had started before draining goes idle now; drop it
    // once Node has marked it so (on the next turn).
    setImmediate(() => this.server?.closeIdleConnections());
    if (this.inFlight === 0) for (const wake of this.idleWaiters) wake();
  }

  /** True once no request is in flight, false if `timeoutMs` passes first. */
  private async requestsFinished(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return true;
    let wake: () => void = () => undefined;
    let timer: NodeJS.Timeout | undefined;
    const finished = await new Promise<boolean>((resolve) => {
      wake = () => resolve(true);
      this.idleWaiters.add(wake);
      timer = setTimeout(() => resolve(this.inFlight === 0), timeoutMs);
    });
    this.idleWaiters.delete(wake);
    clearTimeout(timer);
    return finished;
  }
}

function pathOf(request: FastifyRequest): string {
  const query = request.url.indexOf('?');
  return query === -1 ? request.url : request.url.slice(0, query);
}
