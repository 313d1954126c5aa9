import { connect } from 'node:net';

/** One HTTP/1.1 request written byte for byte, so nothing on the way can tidy it up. */
export interface RawRequest {
  readonly method: string;
  /** The request target as sent: already percent-encoded, or deliberately not. */
  readonly path: string;
  /** In order; a name may repeat, and values are written as they are (control chars too). */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly body?: Buffer | string;
}

export interface RawResponse {
  /** 0 when the server closed the connection without an answer. */
  readonly status: number;
  /** Lower-cased names; a repeated header keeps its last value. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/**
 * Sends one request on a connection of its own (`Connection: close`) and reads the answer to
 * the end. `Host` and, with a body, `Content-Length` are added unless given.
 */
export function rawRequest(port: number, request: RawRequest, timeoutMs = 10_000) {
  return new Promise<RawResponse>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${request.method} ${request.path} in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A reset after the answer (the server closes a connection it refused) is not a failure.
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(parseResponse(Buffer.concat(chunks)));
    });
    socket.once('connect', () => {
      const body = request.body === undefined ? undefined : Buffer.from(request.body);
      const headers = [...(request.headers ?? [])];
      const has = (name: string) => headers.some(([n]) => n.toLowerCase() === name);
      if (!has('host')) headers.unshift(['Host', '127.0.0.1']);
      if (body && !has('content-length') && !has('transfer-encoding')) {
        headers.push(['Content-Length', String(body.length)]);
      }
      headers.push(['Connection', 'close']);
      const head = [
        `${request.method} ${request.path} HTTP/1.1`,
        ...headers.map(([n, v]) => `${n}: ${v}`),
      ];
      socket.write(Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'));
      if (body) socket.write(body);
    });
  });
}

function parseResponse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) return { status: 0, headers: {}, body: raw };
  const [statusLine, ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0)
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const payload = raw.subarray(end + 4);
  const body = headers['transfer-encoding'] === 'chunked' ? dechunk(payload) : payload;
  return { status, headers, body };
}

function dechunk(payload: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = payload.indexOf('\r\n', at);
    if (lineEnd === -1) break;
    const size = parseInt(payload.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(payload.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
