import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import request from 'supertest';
import { BUCKET_STORE, type BucketStore } from '@tokenguard/bucket-store';
import { ErrorReporter } from '../apps/gateway/src/error-reporting/error-reporter';
import { type Harness, startHarness } from './support/gateway-harness';

/** Stands in for Sentry's ingestion host: records every envelope the SDK posts. */
async function startFakeSentry(): Promise<{ server: Server; port: number; envelopes: string[] }> {
  const envelopes: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const gzipped = req.headers['content-encoding'] === 'gzip';
      envelopes.push((gzipped ? gunzipSync(body) : body).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, envelopes };
}

const INTERNAL_DETAIL = 'disk on fire at /var/lib/secret-path';

/** A store whose reads fail in a way nobody anticipated (not an outage, not bad input). */
const brokenStore = {
  backend: 'memory',
  getBucket: () => Promise.reject(new Error(INTERNAL_DETAIL)),
} as unknown as BucketStore;

describe('error reporting (Sentry)', () => {
  let sentry: Awaited<ReturnType<typeof startFakeSentry>>;

  beforeAll(async () => {
    sentry = await startFakeSentry();
  });
  afterAll(async () => {
    await new Promise((resolve) => sentry.server.close(resolve));
  });

  it('reports an unexpected error with the request id, and answers a generic 500', async () => {
    const h: Harness = await startHarness(
      { SENTRY_DSN: `http://publickey@127.0.0.1:${sentry.port}/42` },
      {},
      { providers: [{ provide: BUCKET_STORE, useValue: brokenStore }] },
    );
    try {
      const res = await request(h.url)
        .get('/buckets/user/alice')
        .set('x-request-id', 'req-sentry-1')
        .expect(500);
      expect(res.body).toEqual({
        error: {
          message: 'The gateway hit an internal error.',
          type: 'server_error',
          code: 'internal_error',
          param: null,
        },
      });
      expect(JSON.stringify(res.body)).not.toContain('disk on fire');

      await h.app.get(ErrorReporter).flush();
      const event = sentry.envelopes.find((e) => e.includes(INTERNAL_DETAIL));
      expect(event).toBeDefined();
      expect(event).toContain('"request_id":"req-sentry-1"');
      // 4xx answers are deliberate, not errors to track.
      await request(h.url).get('/buckets/planet/x').expect(400);
      await h.app.get(ErrorReporter).flush();
      expect(sentry.envelopes.filter((e) => e.includes('Unknown scope'))).toHaveLength(0);
    } finally {
      await h.close();
    }
  });

  it('sends nothing when SENTRY_DSN is unset', async () => {
    const before = sentry.envelopes.length;
    const h = await startHarness(
      {},
      {},
      { providers: [{ provide: BUCKET_STORE, useValue: brokenStore }] },
    );
    try {
      await request(h.url).get('/buckets/user/bob').expect(500);
      await h.app.get(ErrorReporter).flush();
      await new Promise((r) => setTimeout(r, 200));
      expect(sentry.envelopes).toHaveLength(before);
    } finally {
      await h.close();
    }
  });
});
