/**
 * The operator console's static files (console/, built by `npm run build`
 * into dist/console) served by the API process: `GET /` is the console's
 * page, `GET /assets/*` its scripts and styles. The console is a client of
 * the same HTTP API as everyone else; these routes are public (a page and its
 * code hold no data: every call the console makes sends its key), outside the
 * OpenAPI document, and carry a strict Content-Security-Policy: scripts,
 * styles and calls from this origin only.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ERROR_CODES } from '../graph/errors';

/** Where `npm run build` puts the console: dist/console, beside dist/client. */
export const DEFAULT_CONSOLE_DIR = join(__dirname, '..', 'console');

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // React Flow positions nodes with inline style attributes.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY');
}

/**
 * Registers `GET /` and `GET /assets/*`. Without a built console (a checkout
 * where `npm run build` did not build it) `GET /` says how to build it.
 */
export function installConsole(app: FastifyInstance, dir: string = DEFAULT_CONSOLE_DIR): void {
  const built = existsSync(join(dir, 'index.html'));
  const config = { public: true as const };
  if (!built) {
    app.get('/', { schema: { hide: true }, config }, async (_req, reply) =>
      reply.status(404).send({
        error: { code: ERROR_CODES.NOT_FOUND, message: `the operator console is not built (no ${join(dir, 'index.html')}): run npm run build`, details: null },
      }),
    );
    return;
  }
  void app.register(fastifyStatic, { root: dir, serve: false });
  app.get('/', { schema: { hide: true }, config }, async (_req, reply) =>
    // The page is small and names hashed assets: never cached, so a deploy is seen at the next load.
    secure(reply).header('cache-control', 'no-cache').sendFile('index.html'),
  );
  app.get('/assets/*', { schema: { hide: true }, config }, async (req, reply) => {
    const file = (req.params as { '*': string })['*'];
    // Hashed names: cached for a year.
    return secure(reply).sendFile(join('assets', file), { maxAge: 365 * 24 * 3600 * 1000, immutable: true });
  });
}
