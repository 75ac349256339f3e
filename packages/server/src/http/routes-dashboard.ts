/**
 * The web dashboard (`@rune/dashboard`, built at build time) served under `/`: `index.html` and
 * content-hashed assets, read into memory once. The page gets its own Content-Security-Policy —
 * scripts, styles and connections from this origin only, no inline script or style, nothing
 * remote, no framing — while every API response keeps `default-src 'none'`. The files are public
 * (they hold no data); everything the page shows comes from the authenticated API.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { DASHBOARD_DIR } from '@rune/dashboard';
import { RuneError } from '@rune/protocol';
import { Type } from '@sinclair/typebox';
import type { ApiInstance } from './route-context.js';

/** The dashboard page's Content-Security-Policy. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const source = { component: 'rune-server' } as const;

/** Options of {@link registerDashboardRoutes}. */
export interface DashboardRoutesOptions {
  /** The built dashboard (default: the installed `@rune/dashboard`). */
  directory?: string;
}

/** Registers `GET /` and `GET /assets/:name`. */
export function registerDashboardRoutes(
  app: ApiInstance,
  options: DashboardRoutesOptions = {},
): void {
  const directory = options.directory ?? DASHBOARD_DIR;
  const indexFile = join(directory, 'index.html');
  const index = existsSync(indexFile) ? readFileSync(indexFile) : undefined;
  const assetsDir = join(directory, 'assets');
  const assets = new Map<string, Buffer>();
  if (existsSync(assetsDir)) {
    for (const name of readdirSync(assetsDir)) {
      if (ASSET_NAME.test(name)) assets.set(name, readFileSync(join(assetsDir, name)));
    }
  }
  const hidden = { hide: true } as const;

  app.get('/', { config: { minRole: 'public' }, schema: hidden }, async (_request, reply) => {
    if (index === undefined) {
      throw new RuneError(
        'NOT_FOUND',
        'the dashboard is not built (run `pnpm build`); the API is under /v1',
        { source },
      );
    }
    return reply
      .header('content-security-policy', DASHBOARD_CSP)
      .type('text/html; charset=utf-8')
      .send(index);
  });

  app.get(
    '/assets/:name',
    {
      config: { minRole: 'public' },
      schema: { ...hidden, params: Type.Object({ name: Type.String({ maxLength: 128 }) }) },
    },
    async (request, reply) => {
      const { name } = request.params;
      const body = ASSET_NAME.test(name) ? assets.get(name) : undefined;
      if (body === undefined) {
        throw new RuneError('NOT_FOUND', `no dashboard asset ${name.slice(0, 128)}`, { source });
      }
      return (
        reply
          .header('content-security-policy', DASHBOARD_CSP)
          // Names carry a content hash: a new build has new names.
          .header('cache-control', 'public, max-age=31536000, immutable')
          .type(CONTENT_TYPES[extname(name)] ?? 'application/octet-stream')
          .send(body)
      );
    },
  );
}
