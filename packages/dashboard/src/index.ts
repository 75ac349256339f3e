/**
 * @rune/dashboard — the RUNE web dashboard, built at build time into static files that
 * `rune serve` serves (no CDN, no remote fonts). This index is the complete public surface: where
 * the built files are, and the JavaScript budget the build enforces.
 */
import { fileURLToPath } from 'node:url';

/** The directory of the built dashboard: `index.html`, `assets/`, `manifest.json`. */
export const DASHBOARD_DIR: string = fileURLToPath(new URL('./public/', import.meta.url));

/** The most JavaScript the dashboard may ship, gzipped (issue 16); the build fails beyond it. */
export const DASHBOARD_JS_BUDGET_BYTES = 150 * 1024;

/** What the build writes to `manifest.json`. */
export interface DashboardManifest {
  /** Asset file names (under `assets/`), content-hashed. */
  files: string[];
  /** Gzipped bytes of all JavaScript. */
  js_gzip_bytes: number;
}
