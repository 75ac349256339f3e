#!/usr/bin/env node
/**
 * Build step: bundles the CLI (src/main.ts with @rune/core, @rune/protocol, yargs, TypeBox, ...)
 * into a minified dist/main.js plus lazily loaded chunks next to it, replacing the main.js tsc
 * wrote (the other tsc output stays for the package's types and `exports`).
 *
 * Why: resolving, reading and linking 330 small ES modules cost more than everything
 * `rune run noop --node localhost` then does (the bundle loads 8); V8 parsing the code costs next. So: one file per
 * lazy step (yargs, each command), minified, and modules a run rarely needs (string-width,
 * smol-toml, yaml) initialised only on first use. What stays out of the bundle: the transports
 * (`@rune/transport-ssh`, `@rune/transport-ssm`: imported by name only when a node needs them,
 * by their config modules' `fromConfig`, with native addons that must not be bundled) and yaml,
 * required from node_modules, and `@rune/server`
 * (Fastify, the WebAssembly SQLite), loaded only by `rune serve` and `rune token`. Their light config entry points (`@rune/transport-ssh/config`,
 * `@rune/transport-ssm/config`: schema, defaults, options mapping) are bundled: every command
 * validates the config with them, and they share the bundle's TypeBox.
 *
 * Chunks sit in dist/ itself, so `import.meta.url` in the CLI's own modules keeps meaning
 * "dist/" (help.txt, ../package.json). @rune/core locates its built-in plugins and package.json
 * from `import.meta.url`: in its modules that expression is rewritten to the module's real
 * location inside the installed @rune/core (resolved at run time), so the bundle uses the
 * plugins of the @rune/core it depends on.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { hashBuildInputs, staleDependencies } from './build-inputs.mjs';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
/**
 * For bench/startup.mjs only (`--cli-without-otel`), never for a release: `RUNE_BUNDLE_OUTDIR`
 * writes the bundle elsewhere under this package (no build stamp), and `RUNE_BUNDLE_OTEL_API`
 * names a module bundled in place of `@opentelemetry/api`, so that the benchmark can start a CLI
 * that contains no OpenTelemetry code at all beside the real one.
 */
const benchOutDir = process.env.RUNE_BUNDLE_OUTDIR;
const benchOtelApi = process.env.RUNE_BUNDLE_OTEL_API;
const outDir = benchOutDir ?? 'dist';
const distDir = join(packageDir, outDir);
// node_modules/@rune/core is a workspace symlink; esbuild reports real paths.
const coreDist = fileURLToPath(new URL('.', import.meta.resolve('@rune/core')));

/** Rewrites `import.meta.url` in @rune/core's modules to their location in the installed package. */
const coreImportMetaUrl = {
  name: 'rune-core-import-meta-url',
  setup(builder) {
    builder.onLoad({ filter: /\.js$/ }, (args) => {
      if (!args.path.startsWith(coreDist)) return undefined;
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const withinDist = relative(coreDist, args.path).split(sep).join('/');
      const located = `new URL(${JSON.stringify(`./${withinDist}`)}, import.meta.resolve('@rune/core')).href`;
      return { contents: source.replaceAll('import.meta.url', located), loader: 'js' };
    });
  },
};

/**
 * Modules evaluated on first use instead of at start-up, with the exports the bundle uses:
 * importers get a small stand-in whose functions `require()` the real module when first called
 * (esbuild then initialises it lazily). A name missing here fails the build.
 */
const LAZY_MODULES = {
  // Creates an Intl.Segmenter and compiles Unicode-property regexes on load (~40 ms); yargs
  // measures text only to render help and usage errors.
  'string-width': ['default'],
  // TOML is parsed only when a config file exists.
  'smol-toml': ['parse', 'TomlError'],
  // YAML is read only when there is an inventory file.
  yaml: ['isAlias', 'isMap', 'isScalar', 'isSeq', 'LineCounter', 'parseDocument'],
  // CEL is compiled only when a workflow runs or is validated.
  '@marcbachmann/cel-js': ['Environment'],
};
/**
 * Lazy modules left out of the bundle and required from node_modules on first use (CEL too: only
 * workflows use it, and Node >= 20.19 requires ES modules): yaml is a
 * third of the code `rune run` would otherwise parse at every start (it is a dependency of this
 * package, so it resolves from dist/).
 */
const UNBUNDLED_LAZY_MODULES = new Set(['yaml', '@marcbachmann/cel-js']);

/**
 * The transport packages' main entry points (and `@rune/server`, and `@rune/server/telemetry`
 * that `rune run` loads only when OTEL_* asks for traces) stay external; their subpaths
 * (`/config`) do not.
 * (esbuild's `external` would also match every subpath of a package.)
 */
const TRANSPORT_ENTRY_POINTS = /^@rune\/(transport-(ssh|ssm)|server|server\/telemetry)$/;
const externalTransports = {
  name: 'rune-external-transports',
  setup(builder) {
    builder.onResolve({ filter: TRANSPORT_ENTRY_POINTS }, (args) => ({
      path: args.path,
      external: true,
    }));
  },
};

const otelApiReplaced = {
  name: 'rune-bench-otel-api',
  setup(builder) {
    if (benchOtelApi === undefined) return;
    builder.onResolve({ filter: /^@opentelemetry\/api$/ }, () => ({ path: benchOtelApi }));
  },
};

const lazyModules = {
  name: 'rune-lazy-modules',
  setup(builder) {
    const names = Object.keys(LAZY_MODULES).map((name) => name.replace(/[-/]/g, '\\$&'));
    builder.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (args) =>
      args.pluginData?.real === true
        ? undefined
        : { path: args.path, namespace: 'rune-lazy', pluginData: { resolveDir: args.resolveDir } },
    );
    builder.onResolve({ filter: /^rune-lazy-real:/ }, async (args) => {
      const name = args.path.slice('rune-lazy-real:'.length);
      if (UNBUNDLED_LAZY_MODULES.has(name)) return { path: name, external: true };
      const result = await builder.resolve(name, {
        kind: 'require-call',
        resolveDir: args.pluginData.resolveDir,
        pluginData: { real: true },
      });
      if (result.errors.length > 0) return { errors: result.errors };
      return { path: result.path };
    });
    builder.onLoad({ filter: /.*/, namespace: 'rune-lazy' }, (args) => {
      const exports = LAZY_MODULES[args.path];
      const named = exports.filter((name) => name !== 'default');
      // Until the first call, each export is a stand-in; loading rebinds them to the real ones,
      // so later `instanceof` checks and identity comparisons see the real classes.
      const load = [
        'let real;',
        'const load = () => {',
        `  if (real === undefined) {`,
        `    real = require(${JSON.stringify(`rune-lazy-real:${args.path}`)});`,
        ...named.map((name) => `    ${name} = real.${name};`),
        '  }',
        '  return real;',
        '};',
      ].join('\n');
      const forward = exports.map((name) =>
        name === 'default'
          ? 'export default function (...args) { return load().default(...args); }'
          : `export let ${name} = function (...args) { const target = load().${name}; return new.target ? new target(...args) : target(...args); };`,
      );
      return {
        contents: [load, ...forward].join('\n'),
        loader: 'js',
        resolveDir: args.pluginData.resolveDir,
        pluginData: args.pluginData,
      };
    });
  },
};

// Chunks of an earlier bundle (esbuild names them <name>-<8 hash characters>.js).
mkdirSync(distDir, { recursive: true });
for (const name of readdirSync(distDir)) {
  if (/^[\w-]+-[A-Z0-9]{8}\.js(\.map)?$/.test(name)) rmSync(join(distDir, name));
}

const result = await build({
  absWorkingDir: packageDir,
  entryPoints: { main: 'src/main.ts' },
  outdir: outDir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: '[name]-[hash]',
  // CommonJS dependencies (picocolors) call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __runeCreateRequire } from 'node:module'; const require = __runeCreateRequire(import.meta.url);",
  },
  plugins: [externalTransports, coreImportMetaUrl, lazyModules, otelApiReplaced],
  legalComments: 'none',
  minify: true,
  keepNames: true,
  sourcemap: true,
  logLevel: 'warning',
  metafile: true,
});
if (!Object.keys(result.metafile.outputs).includes(`${outDir}/main.js`)) {
  throw new Error(`bundle: ${outDir}/main.js was not written`);
}
if (benchOutDir !== undefined) process.exit(0);

// The build stamp the integration tests check (see build-inputs.mjs). A dependency whose dist/
// is older than its sources is recorded, so the tests refuse this bundle too.
const inputs = hashBuildInputs();
writeFileSync(
  join(distDir, 'build-stamp.json'),
  `${JSON.stringify(
    {
      inputs_sha256: inputs.sha256,
      stale_dependencies: staleDependencies(),
      built_at: new Date().toISOString(),
      files: inputs.files,
    },
    null,
    1,
  )}\n`,
);
