#!/usr/bin/env node
/**
 * Build step: bundles ui/main.tsx (Preact) with esbuild into content-hashed files under
 * dist/public/assets, writes dist/public/index.html (no inline script or style: the server's CSP
 * forbids them) and dist/public/manifest.json, and fails when the gzipped JavaScript exceeds the
 * budget of issue 16 (150 KB).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const publicDir = join(packageDir, 'dist', 'public');
const assetsDir = join(publicDir, 'assets');
const BUDGET = 150 * 1024;

rmSync(publicDir, { recursive: true, force: true });
mkdirSync(assetsDir, { recursive: true });
const result = await build({
  entryPoints: [join(packageDir, 'ui', 'main.tsx')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: '[name]-[hash]',
  outdir: assetsDir,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
const files = Object.keys(result.metafile.outputs).map((path) => basename(path));
const script = files.find((file) => file.endsWith('.js'));
const style = files.find((file) => file.endsWith('.css'));
if (script === undefined || style === undefined) throw new Error('the bundle lacks its js or css');
const jsGzip = files
  .filter((file) => file.endsWith('.js'))
  .reduce(
    (sum, file) => sum + gzipSync(readFileSync(join(assetsDir, file)), { level: 9 }).length,
    0,
  );
if (jsGzip > BUDGET) {
  console.error(`dashboard: ${jsGzip} bytes of gzipped JavaScript exceed the budget of ${BUDGET}`);
  process.exit(1);
}
writeFileSync(
  join(publicDir, 'index.html'),
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>RUNE</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/${style}">
<script type="module" src="/assets/${script}"></script>
</head>
<body>
<noscript>The RUNE dashboard needs JavaScript.</noscript>
<div id="app"></div>
</body>
</html>
`,
);
writeFileSync(
  join(publicDir, 'manifest.json'),
  `${JSON.stringify({ files, js_gzip_bytes: jsGzip }, null, 2)}\n`,
);
console.log(
  `dashboard: ${files.join(', ')}; JavaScript ${(jsGzip / 1024).toFixed(1)} KB gzipped (budget 150 KB)`,
);
