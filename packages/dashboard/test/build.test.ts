/**
 * The built dashboard (run the build first): within the JavaScript budget, an index.html with no
 * inline script or style and nothing remote, and every asset it names present.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DASHBOARD_JS_BUDGET_BYTES, type DashboardManifest } from '../src/index.js';

/** What `DASHBOARD_DIR` is in the built package. */
const DASHBOARD_DIR = fileURLToPath(new URL('../dist/public/', import.meta.url));

import { can } from '../ui/can.js';

describe('the build', () => {
  const manifest = JSON.parse(
    readFileSync(join(DASHBOARD_DIR, 'manifest.json'), 'utf8'),
  ) as DashboardManifest;

  it('ships at most 150 KB of gzipped JavaScript', () => {
    const measured = manifest.files
      .filter((file) => file.endsWith('.js'))
      .reduce(
        (sum, file) =>
          sum + gzipSync(readFileSync(join(DASHBOARD_DIR, 'assets', file)), { level: 9 }).length,
        0,
      );
    expect(measured).toBe(manifest.js_gzip_bytes);
    console.log(
      `dashboard JavaScript: ${(measured / 1024).toFixed(1)} KB gzipped of a ${DASHBOARD_JS_BUDGET_BYTES / 1024} KB budget`,
    );
    expect(measured).toBeLessThanOrEqual(DASHBOARD_JS_BUDGET_BYTES);
  });

  it('index.html loads only its own assets, with no inline script or style', () => {
    const html = readFileSync(join(DASHBOARD_DIR, 'index.html'), 'utf8');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(html).not.toMatch(/https?:\/\//);
    const referenced = [...html.matchAll(/(?:src|href)="\/assets\/([^"]+)"/g)].map((m) => m[1]);
    expect(referenced.length).toBe(2);
    for (const file of referenced)
      expect(existsSync(join(DASHBOARD_DIR, 'assets', file as string))).toBe(true);
  });
});

describe('can()', () => {
  const session = (role: string) => ({
    principal: 'token:x',
    role,
    csrf_token: null,
    expires_at: null,
  });
  it('follows the roles until the policy provides decisions', () => {
    expect(can(session('viewer'), 'view')).toBe(true);
    expect(can(session('viewer'), 'run', 'noop')).toBe(false);
    expect(can(session('operator'), 'run', 'noop')).toBe(true);
    expect(can(session('operator'), 'admin')).toBe(false);
    expect(can(null, 'view')).toBe(false);
  });
  it('prefers per-action decisions when the server sends them', () => {
    const withPolicy = { ...session('viewer'), permissions: { noop: ['view', 'run'] as const } };
    expect(can({ ...withPolicy, permissions: { noop: ['view', 'run'] } }, 'run', 'noop')).toBe(
      true,
    );
    expect(can({ ...withPolicy, permissions: { noop: ['view'] } }, 'run', 'noop')).toBe(false);
  });
});
