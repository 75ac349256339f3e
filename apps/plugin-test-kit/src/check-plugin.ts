/**
 * Checks one plugin: its manifest, shellcheck, then every case (from its cases file and generated
 * from its manifest) run as a real child process in a sandbox — PATH shims in front, HOME, TMPDIR
 * and the working directory in a fresh temporary directory — judged by judge-case.ts
 * (`evaluatePluginOutput()`, then named checks).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import {
  createRcsRequest,
  encodeRcsRequest,
  inferMrsManifest,
  type MrsManifest,
  parseMrsManifest,
  type RcsRequest,
  resolveParameters,
  validateRcsRequest,
} from '@rune/protocol';
import { type CasesFile, loadCasesFile, type PluginCase } from './cases-file.js';
import type { DiscoveredPlugin } from './discover-plugins.js';
import { generateCases, type TestCase, unsampledParameters } from './generated-cases.js';
import { type CaseRun, describeViolations, judgeCase } from './judge-case.js';
import { runPluginProcess } from './plugin-process.js';
import type { CheckResult, PluginReport } from './report.js';
import { runShellcheck } from './shellcheck.js';
import { createShimDirectory, mergeShims } from './shims.js';
import { TEST_KIT_VERSION } from './version.js';

/** Options of {@link checkPlugin}. */
export interface CheckPluginOptions {
  /** Run shellcheck on Bash plugins when it is installed (default true). */
  shellcheck?: boolean;
  /** Run the cases generated from the manifest (default true; a cases file can turn them off). */
  generated?: boolean;
  /** Only run cases whose name matches this expression. */
  filter?: RegExp;
  /** Where sandboxes are created (default: the system temp dir). */
  tempDir?: string;
}

/** A hostname acceptable as RCS sender.host. */
const senderHost = (): string => {
  const name = hostname().slice(0, 255);
  return name === '' ? 'localhost' : name;
};

/**
 * Builds the RCS request of a case with the protocol's one builder (`createRcsRequest`), as core's
 * planning does: sent by `rune-plugin-test` to node `localhost` over `local`, deploy mode ship.
 * Validated with validateRcsRequest for normal cases.
 */
export function buildRcsRequest(
  manifest: MrsManifest,
  parameters: Record<string, unknown>,
  dryRun: boolean,
  timeoutMs: number,
): RcsRequest {
  return createRcsRequest({
    messageId: randomUUID(),
    traceId: randomBytes(16).toString('hex'),
    timestamp: new Date(),
    sender: { component: 'rune-plugin-test', version: TEST_KIT_VERSION, host: senderHost() },
    action: manifest.name,
    node: 'localhost',
    transport: 'local',
    deployMode: 'ship',
    parameters,
    dryRun,
    timeoutMs,
  });
}

/** Loads the manifest of a plugin, or infers one. */
async function loadManifest(
  plugin: DiscoveredPlugin,
): Promise<{ manifest: MrsManifest | null; check: CheckResult }> {
  const started = performance.now();
  const done = (check: Omit<CheckResult, 'durationMs'>) => ({
    ...check,
    durationMs: performance.now() - started,
  });
  const inferred = () => {
    const result = inferMrsManifest(basename(plugin.file));
    return result.ok ? result.value : null;
  };
  if (plugin.manifestFile === undefined) {
    const manifest = inferred();
    if (manifest === null) {
      return {
        manifest: null,
        check: done({
          name: 'manifest',
          status: 'fail',
          message: 'no manifest, and the file name does not give a valid action name',
          expected: `${basename(plugin.file)} named like an action (^[a-z0-9][a-z0-9-]{0,63}$ plus an extension), or a manifest`,
          actual: basename(plugin.file),
          fix: 'Rename the file or add a <name>.manifest.json next to it.',
        }),
      };
    }
    return {
      manifest,
      check: done({
        name: 'manifest',
        status: 'warn',
        message: `no manifest: RUNE infers one (name "${manifest.name}", version 0.0.0, dangerous, no dry-run, no declared parameters)`,
        fix: `Add ${manifest.name}.manifest.json (MRS v1) next to the plugin to declare parameters, timeout and dry-run support.`,
      }),
    };
  }
  const bytes = await readFile(plugin.manifestFile);
  const parsed = parseMrsManifest(bytes);
  if (!parsed.ok) {
    return {
      manifest: inferred(),
      check: done({
        name: 'manifest is valid MRS v1',
        status: 'fail',
        message: parsed.error.message,
        expected: 'a manifest valid against MRS v1 (specs/mrs-v1.md)',
        actual: describeViolations(parsed.error.details) ?? parsed.error.code,
        fix: 'Fix the fields listed (JSON pointers into the manifest); specs/mrs-v1.md describes every field.',
        details: { file: plugin.manifestFile, error: parsed.error.toJSON() },
      }),
    };
  }
  const manifest = parsed.value;
  const entrypoint = manifest.entrypoint ?? `${manifest.name}.sh`;
  if (entrypoint !== basename(plugin.sourceFile)) {
    return {
      manifest,
      check: done({
        name: 'manifest is valid MRS v1',
        status: 'fail',
        message: `the manifest's entrypoint is "${entrypoint}" but the plugin file is "${basename(plugin.sourceFile)}"`,
        expected: `entrypoint ${basename(plugin.sourceFile)}`,
        actual: entrypoint,
        fix: 'Set "entrypoint" in the manifest, or name the file <name>.sh.',
      }),
    };
  }
  return {
    manifest,
    check: done({
      name: 'manifest is valid MRS v1',
      status: 'pass',
      message: `${manifest.name} ${manifest.version}`,
    }),
  };
}

/** Turns a hand-written case into a runnable one. */
function fromCasesFile(entry: PluginCase, file: CasesFile): TestCase {
  const testCase: TestCase = {
    name: entry.name,
    origin: 'cases-file',
    kind: 'scripted',
    parameters: entry.parameters ?? {},
    dryRun: entry.dry_run ?? false,
    env: { ...file.env, ...entry.env },
    request: entry.stdin === undefined ? 'rcs' : 'raw',
    shims: mergeShims(file.shims, entry.shims),
    expect: entry.expect ?? {},
  };
  if (entry.timeout_ms !== undefined) testCase.timeoutMs = entry.timeout_ms;
  if (entry.stdin !== undefined) testCase.stdin = entry.stdin;
  if (entry.requires_root === true) testCase.requiresRoot = true;
  return testCase;
}

/** Keeps only generated cases whose validity the control node agrees with. */
function agreedByControlNode(manifest: MrsManifest, testCase: TestCase): boolean {
  if (testCase.request !== 'rcs') return true;
  const accepted = resolveParameters(manifest, testCase.parameters).ok;
  return testCase.kind === 'invalid-input' ? !accepted : accepted;
}

/** Lists files (recursively) under a directory, relative to it. */
async function listFiles(root: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(join(root, prefix), { withFileTypes: true }).catch(() => []);
  const files: string[] = [];
  for (const entry of entries) {
    const relativePath = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) files.push(...(await listFiles(root, relativePath)));
    else files.push(relativePath);
  }
  return files;
}

async function runCase(
  plugin: DiscoveredPlugin,
  manifest: MrsManifest,
  testCase: TestCase,
  file: CasesFile,
  sandboxRoot: string,
): Promise<CaseRun> {
  const sandbox = await mkdtemp(join(sandboxRoot, 'case-'));
  const dirs = {
    home: join(sandbox, 'home'),
    tmp: join(sandbox, 'tmp'),
    work: join(sandbox, 'work'),
    shims: join(sandbox, 'shims'),
  };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  const shims = await createShimDirectory({
    directory: dirs.shims,
    shims: testCase.shims,
    extraCommands: manifest.requirements.commands,
    mutating: file.mutating ?? [],
  });
  const timeoutMs = Math.min(testCase.timeoutMs ?? manifest.timeout_ms, manifest.timeout_ms);
  let request: RcsRequest | null = null;
  let stdinText: string;
  if (testCase.request === 'raw') {
    stdinText = testCase.stdin ?? '';
  } else if (testCase.request === 'malformed-json') {
    stdinText = '{"message_metadata": {"message_id": "not closed", ';
  } else {
    request = buildRcsRequest(manifest, testCase.parameters, testCase.dryRun, timeoutMs);
    const checked = validateRcsRequest(request);
    if (!checked.ok) throw checked.error;
    const sent: unknown =
      testCase.request === 'unknown-schema-version'
        ? { ...request, payload: { ...request.payload, schema_version: 'rcs_v999' } }
        : request;
    // As core sends it: the canonical encoding (the unknown-version case: any JSON will do).
    stdinText = sent === request ? encodeRcsRequest(request) : JSON.stringify(sent);
  }
  const stdin = new TextEncoder().encode(stdinText);
  const process = await runPluginProcess({
    file: plugin.runFile,
    stdin,
    cwd: dirs.work,
    timeoutMs,
    env: {
      PATH: `${dirs.shims}:${globalThis.process.env.PATH ?? '/usr/bin:/bin'}`,
      HOME: dirs.home,
      TMPDIR: dirs.tmp,
      LANG: 'C.UTF-8',
      USER: globalThis.process.env.USER ?? 'rune',
      ...testCase.env,
    },
  });
  const calls = await shims.calls();
  const leftovers = [
    ...(await listFiles(dirs.home)).map((path) => `$HOME/${path}`),
    ...(await listFiles(dirs.tmp)).map((path) => `$TMPDIR/${path}`),
    ...(await listFiles(dirs.work)).map((path) => `./${path}`),
  ];
  await rm(sandbox, { recursive: true, force: true });
  return { request, stdin, process, calls, leftovers, timeoutMs };
}

/** Runs every check of one plugin. */
export async function checkPlugin(
  plugin: DiscoveredPlugin,
  options: CheckPluginOptions = {},
): Promise<PluginReport> {
  const started = performance.now();
  const checks: CheckResult[] = [];
  const { manifest, check: manifestCheck } = await loadManifest(plugin);
  checks.push(manifestCheck);
  const report = (kind: PluginReport['manifest']): PluginReport => ({
    name: manifest?.name ?? basename(plugin.file),
    file: plugin.file,
    manifest: kind,
    assembled: plugin.assembled,
    ...(plugin.sha256 === undefined ? {} : { sha256: plugin.sha256 }),
    passed: checks.every((check) => check.status !== 'fail'),
    checks,
    durationMs: performance.now() - started,
  });
  const manifestKind: PluginReport['manifest'] =
    plugin.manifestFile === undefined
      ? 'inferred'
      : manifestCheck.status === 'pass'
        ? 'valid'
        : 'invalid';
  const exists = await stat(plugin.runFile).then(
    (info) => info.isFile(),
    () => false,
  );
  if (!exists) {
    checks.push({
      name: 'plugin file exists',
      status: 'fail',
      message: `${plugin.runFile} does not exist`,
      expected: 'the entrypoint named by the manifest',
      actual: 'no such file',
      fix: 'Add the plugin file or fix "entrypoint" in the manifest.',
      durationMs: 0,
    });
    return report('missing-entrypoint');
  }
  if (plugin.assemblyError !== undefined) {
    checks.push({
      name: 'plugin assembles',
      status: 'fail',
      message: `${plugin.assemblyError.code}: ${plugin.assemblyError.message}`,
      expected: 'every `# @rune-include NAME` line names a library RUNE can inline',
      actual: plugin.assemblyError.code,
      fix: 'Name a library in lib/ next to the plugin, in ../lib, or one shipped with RUNE (bpcs.sh, service.sh); see docs/writing-plugins.md, "Includes".',
      details: { error: plugin.assemblyError.toJSON() },
      durationMs: 0,
    });
    return report(manifestKind);
  }
  if (options.shellcheck !== false) checks.push(await runShellcheck(plugin.runFile));
  if (manifest === null) return report(manifestKind);

  let file: CasesFile = {};
  if (plugin.casesFile !== undefined) {
    const loadStarted = performance.now();
    const loaded = await loadCasesFile(plugin.casesFile);
    if (loaded.ok) file = loaded.value;
    else {
      checks.push({
        name: 'cases file is valid',
        status: 'fail',
        message: loaded.error.message,
        expected: 'a cases file following docs/plugin-test-kit.md',
        actual: describeViolations(loaded.error.details) ?? loaded.error.code,
        fix: 'Fix the entries listed in details.',
        details: { file: plugin.casesFile, error: loaded.error.toJSON() },
        durationMs: performance.now() - loadStarted,
      });
    }
  }
  const cases: TestCase[] = (file.cases ?? []).map((entry) => fromCasesFile(entry, file));
  if (options.generated !== false && file.generated !== false) {
    const unsampled = unsampledParameters(manifest, file.samples);
    if (unsampled.length > 0) {
      checks.push({
        name: 'generated cases',
        status: 'warn',
        message: `cannot derive a valid value for the required parameter${unsampled.length === 1 ? '' : 's'} ${unsampled.map((name) => `"${name}"`).join(', ')}: only the malformed-input cases were generated`,
        expected: 'a default, an enum, or a value the kit can derive for each required parameter',
        actual: unsampled
          .map((name) => {
            const pattern = manifest.parameters.properties[name]?.pattern;
            return pattern === undefined ? name : `${name} (pattern ${pattern})`;
          })
          .join(', '),
        fix: `Add valid values to the cases file, e.g. \`samples: { ${unsampled.map((name) => `${name}: ...`).join(', ')} }\`, so that the defaults, boundary and wrong-type cases run too.`,
        durationMs: 0,
      });
    }
    for (const generated of generateCases(manifest, file.samples)) {
      if (!agreedByControlNode(manifest, generated)) continue;
      cases.push({
        ...generated,
        env: { ...file.env },
        shims: file.shims ?? {},
      });
    }
  }
  const sandboxRoot = await mkdtemp(join(options.tempDir ?? tmpdir(), 'rune-plugin-test-'));
  try {
    for (const testCase of cases) {
      if (options.filter !== undefined && !options.filter.test(testCase.name)) continue;
      const caseStarted = performance.now();
      if (testCase.requiresRoot === true && process.geteuid?.() !== 0) {
        checks.push({
          name: testCase.name,
          status: 'skip',
          message: 'needs root (requires_root: true); run rune-plugin-test as root to exercise it',
          durationMs: 0,
        });
        continue;
      }
      try {
        const run = await runCase(plugin, manifest, testCase, file, sandboxRoot);
        checks.push({
          name: testCase.name,
          ...judgeCase(testCase, run, manifest),
          durationMs: performance.now() - caseStarted,
        });
      } catch (error) {
        checks.push({
          name: testCase.name,
          status: 'fail',
          message: `could not run the case: ${error instanceof Error ? error.message : String(error)}`,
          expected: 'the plugin starts',
          actual: 'start failed',
          fix: 'Check that the file is a script with a valid #! line or is executable.',
          durationMs: performance.now() - caseStarted,
        });
      }
    }
  } finally {
    await rm(sandboxRoot, { recursive: true, force: true });
  }
  return report(manifestKind);
}
