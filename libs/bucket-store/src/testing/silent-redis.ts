import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';

/**
 * A fake Redis that completes a client's connection handshake (CLIENT, INFO, SELECT, AUTH)
 * and then never answers another command: a hung server, to test command timeouts.
 */
export interface SilentRedisHandle {
  readonly port: number;
  readonly url: string;
  /** Commands received after the handshake, by name (lower case). */
  readonly unanswered: readonly string[];
  stop(): Promise<void>;
}

/** One RESP command (an array of bulk strings) off the front of `buffer`, if it is complete. */
export function readRespCommand(buffer: Buffer): [string[] | undefined, Buffer] {
  let at = 0;
  const line = (): string | undefined => {
    const end = buffer.indexOf('\r\n', at);
    if (end < 0) return undefined;
    const text = buffer.toString('latin1', at, end);
    at = end + 2;
    return text;
  };
  const head = line();
  if (head === undefined) return [undefined, buffer];
  const parts: string[] = [];
  for (let i = 0; i < Number(head.slice(1)); i++) {
    const size = line();
    if (size === undefined) return [undefined, buffer];
    const length = Number(size.slice(1));
    if (buffer.length < at + length + 2) return [undefined, buffer];
    parts.push(buffer.toString('utf8', at, at + length));
    at += length + 2;
  }
  return [parts, buffer.subarray(at)];
}

const INFO = '# Server\r\nredis_version:7.0.0\r\nloading:0\r\n';

export async function startSilentRedis(): Promise<SilentRedisHandle> {
  const sockets = new Set<Socket>();
  const unanswered: string[] = [];
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (data) => {
      pending = Buffer.concat([pending, data]);
      for (;;) {
        const [command, rest] = readRespCommand(pending);
        if (command === undefined) return;
        pending = rest;
        const name = (command[0] ?? '').toLowerCase();
        if (name === 'info') socket.write(`$${Buffer.byteLength(INFO)}\r\n${INFO}\r\n`);
        else if (['client', 'select', 'auth'].includes(name)) socket.write('+OK\r\n');
        else unanswered.push(name);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    unanswered,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
