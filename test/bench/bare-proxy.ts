/**
 * The floor for any Node gateway: node:http in front of an undici pool, bodies piped both
 * ways, nothing parsed, nothing counted. `node bare-proxy.js <port> <upstream origin>`.
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';

const port = Number(process.argv[2] ?? 18183);
const upstream = process.argv[3] ?? 'http://127.0.0.1:18181';
const pool = new Pool(upstream, { connections: 128, pipelining: 1 });

createServer((req, res) => {
  pool
    .request({
      method: req.method as 'POST',
      path: req.url ?? '/',
      headers: {
        'content-type': req.headers['content-type'] ?? 'application/json',
        authorization: req.headers.authorization ?? '',
      },
      body: req.method === 'GET' ? undefined : req,
    })
    .then((upstreamRes) => {
      res.writeHead(upstreamRes.statusCode, {
        'content-type': String(upstreamRes.headers['content-type'] ?? 'application/json'),
      });
      upstreamRes.body.pipe(res);
    })
    .catch(() => {
      res.writeHead(502).end();
    });
}).listen(port, '127.0.0.1');
