import { connect, type Socket } from 'node:net';
import { sleep } from '../../../libs/bucket-store/src/testing/redis-process';

/** A TCP connection to the gateway that the test writes byte by byte. */
export async function openSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  socket.setNoDelay(true);
  // A reset by the gateway is an outcome the test reads, not a crash of the test.
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** Everything the gateway sends until it closes the connection (or `timeoutMs`). */
export function readAll(socket: Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const done = () => {
      clearTimeout(timer);
      resolve(text);
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
    });
    socket.once('close', done);
  });
}

export interface SlowRequest {
  readonly id: string;
  readonly user: string;
  readonly body: string;
  /** Bytes of the body sent before the pause between drips. */
  readonly dripBytes: number;
  readonly dripEveryMs: number;
  /** Stop after this many body bytes and close the socket (an abandoned upload). */
  readonly abandonAfter?: number;
}

/**
 * Slowloris on the body: the headers at once, then the JSON body a few bytes at a time.
 * Resolves with the HTTP status the gateway answered (null: none, e.g. abandoned).
 */
export async function slowPost(url: string, request: SlowRequest): Promise<number | null> {
  const socket = await openSocket(url);
  const body = Buffer.from(request.body);
  const response = readAll(socket, 60_000);
  socket.write(
    'POST /v1/chat/completions HTTP/1.1\r\n' +
      `Host: ${new URL(url).host}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${body.length}\r\n` +
      `x-user-id: ${request.user}\r\n` +
      `x-request-id: ${request.id}\r\n` +
      'Connection: close\r\n\r\n',
  );
  const end = request.abandonAfter ?? body.length;
  for (let at = 0; at < end; at += request.dripBytes) {
    if (socket.destroyed) break;
    socket.write(body.subarray(at, Math.min(at + request.dripBytes, end)));
    await sleep(request.dripEveryMs);
  }
  if (request.abandonAfter !== undefined) {
    socket.destroy();
    return null;
  }
  const text = await response;
  const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
  return status === undefined ? null : Number(status);
}

/**
 * Slowloris on the headers: the request line and one header line at a time, never the blank
 * line that ends them. The socket stays open until the test (or the gateway) closes it.
 */
export async function slowHeaders(url: string, lines: number, everyMs: number): Promise<Socket> {
  const socket = await openSocket(url);
  socket.write('POST /v1/chat/completions HTTP/1.1\r\n');
  void (async () => {
    for (let i = 0; i < lines && !socket.destroyed; i++) {
      await sleep(everyMs);
      socket.write(`x-slow-${i}: ${'a'.repeat(16)}\r\n`);
    }
  })();
  return socket;
}
