/**
 * Checks one plugin: its manifest, shellcheck, then every case (from its cases file and generated
 * from its manifest) run as a real child process in a sandbox — PATH shims in front, HOME, TMPDIR
 * and the working directory in a fresh temporary directory — judged by `evaluatePluginOutput()`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import {
  evaluatePluginOutput,
  inferMrsManifest,
  type MrsManifest,
  type PluginEvaluation,
  parseMrsManifest,
  RCS_V1,
  type RcsRequest,
  resolveParameters,
  UNTRACED_TRACE_ID,
  validateRcsRequest,
} from '@rune/protocol';
import { type CasesFile, loadCasesFile, type PluginCase } from './cases-file.js';
import type { DiscoveredPlugin } from './discover-plugins.js';
import { explain, isProtocolBreach } from './explain.js';
import { generateCases, type TestCase, unsampledParameters } from './generated-cases.js';
import { MISSING, matchValue, resolvePointer } from './matchers.js';
import { type PluginProcessResult, runPluginProcess } from './plugin-process.js';
import type { CheckResult, PluginReport } from './report.js';
import { runShellcheck } from './shellcheck.js';
import { createShimDirectory, formatCall, mergeShims, type ShimCall } from './shims.js';
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

const decoder = new TextDecoder();
const text = (bytes: Uint8Array): string => decoder.decode(bytes);
const tail = (value: string, length = 1200): string =>
  value.length > length ? `…${value.slice(-length)}` : value;

/** A hostname acceptable as RCS sender.host. */
const senderHost = (): string => {
  const name = hostname().slice(0, 255);
  return name === '' ? 'localhost' : name;
};

/** Builds the RCS request of a case; validated with validateRcsRequest for normal cases. */
export function buildRcsRequest(
  manifest: MrsManifest,
  parameters: Record<string, unknown>,
  dryRun: boolean,
  timeoutMs: number,
): RcsRequest {
  return {
    message_metadata: {
      message_id: randomUUID(),
      trace_id: randomBytes(16).toString('hex'),
      timestamp: new Date().toISOString(),
      sender: { component: 'rune-plugin-test', version: TEST_KIT_VERSION, host: senderHost() },
    },
    routing: {
      action: manifest.name,
      node: 'localhost',
      transport: 'local',
      deploy_mode: 'ship',
    },
    payload: {
      schema_version: RCS_V1,
      data: { input_parameters: parameters, options: { dry_run: dryRun, timeout_ms: timeoutMs } },
    },
  };
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

/** "pointer: message" lines for schema violations, or undefined when there are none. */
function describeViolations(details: Record<string, unknown> | undefined): string | undefined {
  const violations = details?.violations;
  if (!Array.isArray(violations) || violations.length === 0) return undefined;
  return violations
    .slice(0, 10)
    .map((violation: { pointer?: string; message?: string }) => {
      const message = String(violation.message ?? '');
      return `${violation.pointer || '/'}: ${message.length > 120 ? `${message.slice(0, 117)}...` : message}`;
    })
    .join('\n');
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

interface CaseRun {
  request: RcsRequest | null;
  stdin: Uint8Array;
  process: PluginProcessResult;
  calls: ShimCall[];
  leftovers: string[];
  timeoutMs: number;
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
    stdinText = JSON.stringify(sent);
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

/** The trace id the plugin had to echo; lenient when the request could not be read. */
function expectedTraceId(testCase: TestCase, run: CaseRun): string {
  const own = (() => {
    try {
      const parsed = JSON.parse(text(run.process.stdout)) as {
        message_metadata?: { trace_id?: unknown };
      };
      return typeof parsed.message_metadata?.trace_id === 'string'
        ? parsed.message_metadata.trace_id
        : undefined;
    } catch {
      return undefined;
    }
  })();
  const requested = run.request?.message_metadata.trace_id;
  if (testCase.request === 'malformed-json' || testCase.request === 'raw') {
    return own ?? requested ?? UNTRACED_TRACE_ID;
  }
  if (testCase.request === 'unknown-schema-version' && own === UNTRACED_TRACE_ID) return own;
  return requested ?? UNTRACED_TRACE_ID;
}

function describeOutcome(run: CaseRun, evaluation: PluginEvaluation | null): string {
  const parts: string[] = [];
  const { process } = run;
  if (process.timedOut) parts.push(`killed after ${run.timeoutMs} ms (timeout)`);
  else if (process.signal !== null) parts.push(`killed by ${process.signal}`);
  else parts.push(`exit ${process.exitCode}`);
  const response = evaluation?.response ?? null;
  if (response !== null) {
    parts.push(`result "${response.payload.result}"`);
    if (response.error !== null)
      parts.push(`error ${response.error.code}: ${response.error.message}`);
  }
  return parts.join(', ');
}

/** Judges one case run. */
function judge(
  testCase: TestCase,
  run: CaseRun,
  manifest: MrsManifest,
): Omit<CheckResult, 'durationMs' | 'name'> {
  const { process } = run;
  const stdoutText = text(process.stdout);
  const stderrText = text(process.stderr);
  const details: Record<string, unknown> = {
    exit_code: process.exitCode,
    signal: process.signal,
    duration_ms: Math.round(process.durationMs),
    dry_run: testCase.dryRun,
    parameters: testCase.parameters,
    calls: run.calls.map(formatCall),
    stdout: tail(stdoutText, 2000),
    stderr_tail: tail(stderrText),
  };
  const fail = (message: string, expected: string, actual: string, fix: string) => ({
    status: 'fail' as const,
    message,
    expected,
    actual,
    fix,
    details,
  });
  if (process.timedOut) {
    return fail(
      `ran past its timeout of ${run.timeoutMs} ms and was killed`,
      `finishes within ${run.timeoutMs} ms (manifest timeout_ms ${manifest.timeout_ms})`,
      `still running after ${run.timeoutMs} ms`,
      'Bound every wait (e.g. `timeout 10 systemctl ...`, retry loops with a deadline derived from options.timeout_ms), or raise timeout_ms in the manifest.',
    );
  }
  const evaluation = evaluatePluginOutput(
    {
      exitCode: process.exitCode,
      signal: process.signal,
      stdout: process.stdout,
      stdoutTruncated: process.stdoutTruncated,
    },
    {
      traceId: expectedTraceId(testCase, run),
      action: manifest.name,
      node: 'localhost',
      ...(run.request === null
        ? {}
        : { requestMessageId: run.request.message_metadata.message_id }),
    },
  );
  const outcome = describeOutcome(run, evaluation);
  if (!evaluation.ok && isProtocolBreach(evaluation.error.code, evaluation.error.category)) {
    const help = explain(evaluation.error.code);
    let fix = help.fix;
    const leading = String(
      evaluation.error.details?.leading_text ?? evaluation.error.details?.trailing_text ?? '',
    );
    const source =
      leading === ''
        ? undefined
        : run.calls.find((call) => {
            const rule = testCase.shims[call.command];
            const rules = rule === undefined ? [] : Array.isArray(rule) ? rule : [rule];
            const answer = rules[call.rule];
            const printed = [
              answer?.stdout,
              ...(answer?.sequence ?? []).map((entry) => entry.stdout),
            ];
            return printed.some(
              (value) =>
                value !== undefined && value.trim() !== '' && leading.includes(value.trim()),
            );
          });
    if (source !== undefined) {
      fix = `The stray text is the output of \`${formatCall(source)}\`, which the plugin let through to stdout. ${fix}`;
    }
    details.error = evaluation.error.toJSON();
    const excerpt = stdoutText.trim().slice(0, 160);
    const got =
      excerpt === ''
        ? outcome
        : `${outcome}; stdout: ${JSON.stringify(excerpt)}${stdoutText.trim().length > 160 ? '…' : ''}`;
    const violations = describeViolations(evaluation.error.details);
    return fail(
      `${evaluation.error.code}: ${evaluation.error.message}`,
      help.expected,
      violations === undefined ? got : `${got}\n${violations}`,
      fix,
    );
  }
  const response = evaluation.response;
  const problems: string[] = [];
  const expected: string[] = [];
  const fixes: string[] = [];
  let warning: string | undefined;
  if (testCase.kind === 'invalid-input') {
    expected.push('exit 2 with result "failure" and an EPS error (invalid input)');
    if (
      process.exitCode !== 2 ||
      response?.payload.result !== 'failure' ||
      response.error === null
    ) {
      problems.push(
        process.exitCode === 0
          ? 'the plugin accepted invalid input'
          : `the plugin did not answer invalid input with exit 2`,
      );
      fixes.push(
        'Validate the request (schema_version, required parameters, types, ranges) before acting, and answer a bad one with result "failure", an EPS error (e.g. code INVALID_PARAMETERS) and exit 2 — never by crashing.',
      );
    }
  }
  if (testCase.kind === 'valid' && process.exitCode === 2) {
    warning = 'the plugin rejected input that the control node considers valid (exit 2)';
  }
  const want = testCase.expect;
  if (want.exit_code !== undefined) {
    expected.push(`exit ${want.exit_code}`);
    if (process.exitCode !== want.exit_code)
      problems.push(`exit ${process.exitCode} instead of ${want.exit_code}`);
  }
  if (want.result !== undefined) {
    expected.push(`result "${want.result}"`);
    if (response?.payload.result !== want.result)
      problems.push(`result "${response?.payload.result ?? '(none)'}" instead of "${want.result}"`);
  }
  if (want.error_code !== undefined) {
    const got = response?.error?.code ?? null;
    expected.push(`plugin error code ${want.error_code ?? 'none'}`);
    if (got !== want.error_code)
      problems.push(`plugin error code ${got ?? 'none'} instead of ${want.error_code ?? 'none'}`);
  }
  if (want.rune_code !== undefined) {
    const got = evaluation.ok ? null : evaluation.error.code;
    expected.push(`rune reports ${want.rune_code ?? 'success'}`);
    if (got !== want.rune_code)
      problems.push(
        `rune would report ${got ?? 'success'} instead of ${want.rune_code ?? 'success'}`,
      );
  }
  for (const [pointer, value] of Object.entries(want.output_data ?? {})) {
    const actual =
      response === null ? MISSING : resolvePointer(response.payload.output_data, pointer);
    const problem = matchValue(actual, value);
    expected.push(`output_data${pointer} ${JSON.stringify(value)}`);
    if (problem !== null) problems.push(`output_data${pointer}: ${problem}`);
  }
  if (want.summary !== undefined) {
    const problem = matchValue(response?.payload.summary ?? MISSING, want.summary);
    expected.push(`summary ${JSON.stringify(want.summary)}`);
    if (problem !== null) problems.push(`summary: ${problem}`);
  }
  if (want.stderr_contains !== undefined) {
    expected.push(`stderr containing ${JSON.stringify(want.stderr_contains)}`);
    if (!stderrText.includes(want.stderr_contains))
      problems.push(`stderr does not contain ${JSON.stringify(want.stderr_contains)}`);
  }
  const made = run.calls.map(formatCall);
  for (const pattern of want.calls ?? []) {
    expected.push(`a call matching /${pattern}/`);
    if (!made.some((call) => new RegExp(pattern).test(call)))
      problems.push(`no call matched /${pattern}/`);
  }
  for (const pattern of want.no_calls ?? []) {
    const hit = made.find((call) => new RegExp(pattern).test(call));
    expected.push(`no call matching /${pattern}/`);
    if (hit !== undefined) problems.push(`unexpected call \`${hit}\``);
  }
  if (testCase.dryRun) {
    const mutating = run.calls.filter((call) => call.mutating).map(formatCall);
    expected.push('dry-run changes nothing');
    if (mutating.length > 0) {
      problems.push(
        `dry-run called mutating command(s): ${mutating.map((call) => `\`${call}\``).join(', ')}`,
      );
      fixes.push(
        'When options.dry_run is true, report what would be done (output_data) without running commands that change the node.',
      );
    }
    const written = run.leftovers.filter((path) => !path.startsWith('$TMPDIR/'));
    if (written.length > 0) {
      problems.push(`dry-run wrote files outside TMPDIR: ${written.slice(0, 10).join(', ')}`);
      fixes.push(
        'In dry-run, write nothing but temporary files under $TMPDIR (and remove those before exiting).',
      );
    }
  }
  if (run.leftovers.some((path) => path.startsWith('$TMPDIR/')) && warning === undefined) {
    warning = `left temporary files behind: ${run.leftovers
      .filter((path) => path.startsWith('$TMPDIR/'))
      .slice(0, 5)
      .join(', ')}`;
  }
  if (problems.length > 0) {
    if (fixes.length === 0) {
      fixes.push(
        testCase.origin === 'cases-file'
          ? 'Compare the plugin with the case in the cases file: either the plugin or the expectation is wrong. stderr and the shim calls are in the details.'
          : 'See the details (stderr, shim calls).',
      );
    }
    if (!evaluation.ok) details.error = evaluation.error.toJSON();
    return fail(problems.join('; '), expected.join(', '), outcome, fixes.join(' '));
  }
  if (warning !== undefined) return { status: 'warn', message: warning, actual: outcome, details };
  return { status: 'pass', message: outcome, details };
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
          ...judge(testCase, run, manifest),
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
