import type { FastifyInstance } from 'fastify';
import { invalidRequest } from './openai-error';

/**
 * One parser for every content type: the body is JSON whatever the header says (curl's
 * default form type included), plain `JSON.parse` (cheaper than Fastify's prototype-
 * poisoning scan; the mock never merges bodies into objects), and bad JSON gets OpenAI's
 * 400 instead of Fastify's error shape.
 */
export function installJsonBodyParser(fastify: FastifyInstance, bodyLimit: number): void {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (_req, body, done) => {
    const text = body as string;
    if (text.length === 0) {
      done(null, undefined);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      done(
        invalidRequest(
          'We could not parse the JSON body of your request. The API expects a JSON payload, but what was sent was not valid JSON.',
        ),
        undefined,
      );
      return;
    }
    done(null, parsed);
  });
}
