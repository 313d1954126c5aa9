/**
 * Paths pino removes from every log object. Bodies (prompts, completions) are never logged at
 * all; these cover the headers and config values that could carry secrets if an error object
 * or a request were ever logged whole.
 */
export const REDACTED_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  '*.authorization',
  '*.apiKey',
  '*.adminToken',
  '*.password',
  'config.upstream.apiKey',
];
