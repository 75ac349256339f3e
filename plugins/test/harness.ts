/**
 * Test harness for the built-in plugins: builds them for real with build.mjs into a temp dir,
 * runs the built files with bash on RCS requests, and judges the result with the normative
 * `evaluatePluginOutput` from @rune/protocol. Tools absent from (or dangerous on) the test
 * machine — systemctl, docker, nomad, journalctl, dmesg, df — are PATH shims: small scripts in a
 * temp dir whose output and exit codes the test scripts, and which record their calls.
 *
 * Every run gets a sandbox PATH: the shim dir first, then a dir of symlinks to an allowlist of
 * real tools. Nothing else from the host PATH is visible, so a real systemctl can never be
 * reached and jq can be hidden to force the pure-Bash parser.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  type BpcsResponse,
  encodeRcsRequest,
  evaluatePluginOutput,
  type PluginEvaluation,
  type RcsRequest,
  validateRcsRequest,
} from '@rune/protocol';
// The one assembler (built @rune/core), as the build of the built-ins uses it.
import { assemblePluginSource } from '../../packages/core/dist/plugins/assemble-plugin.js';
import { build } from '../build.mjs';

/** Absolute path of bash used to run every plugin. */
export const BASH = '/bin/bash';

/** Real tools the plugins may use (coreutils and friends); missing ones are simply left out. */
const BASE_TOOLS = [
  'cat',
  'date',
  'dirname',
  'env',
  'gzip',
  'head',
  'id',
  'ls',
  'mkdir',
  'mktemp',
  'rm',
  'sha256sum',
  'sleep',
  'tail',
  'tar',
  'timeout',
  'touch',
  'uname',
  'wc',
];

/** Finds a command on the host PATH (without a shell). */
export function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** One workspace per test file: built plugins + temp dirs, removed by `dispose()`. */
export interface PluginWorkspace {
  root: string;
  pluginDir: string;
  /** Symlinks to BASE_TOOLS plus jq. */
  baseWithJq: string;
  /** Symlinks to BASE_TOOLS without jq. */
  baseWithoutJq: string;
  /** Path of a built plugin. */
  plugin(name: string): string;
  /** A dir holding only a symlink to the real `command` (to add one tool to PATH). */
  toolDir(command: string): string;
  /** A fresh shim dir (with its state dir) inside the workspace. */
  shims(): ShimDir;
  dispose(): void;
}

/** A directory of PATH shims plus a state directory they read and write. */
export interface ShimDir {
  bin: string;
  state: string;
  /** Writes an executable bash script named `name` (body after the shebang). */
  add(name: string, body: string): void;
  /** Writes a state file the shims read. */
  set(file: string, content: string | Uint8Array): void;
  /** Lines the shims appended to state/calls.log. */
  calls(): string[];
}

function linkTools(dir: string, tools: string[]): void {
  mkdirSync(dir, { recursive: true });
  for (const tool of tools) {
    const real = which(tool);
    if (real !== undefined) symlinkSync(real, join(dir, tool));
  }
}

/** Builds the plugins into a fresh temp dir and prepares sandbox PATH dirs. */
export function createWorkspace(): PluginWorkspace {
  const root = mkdtempSync(join(tmpdir(), 'rune-plugins-test-'));
  const pluginDir = join(root, 'plugins');
  build(pluginDir);
  const baseWithJq = join(root, 'base-jq');
  const baseWithoutJq = join(root, 'base-nojq');
  linkTools(baseWithJq, [...BASE_TOOLS, 'jq']);
  linkTools(baseWithoutJq, BASE_TOOLS);
  let shimCount = 0;
  return {
    root,
    pluginDir,
    baseWithJq,
    baseWithoutJq,
    plugin: (name) => join(pluginDir, `${name}.sh`),
    toolDir: (command) => {
      const dir = join(root, `tool-${command}`);
      if (!existsSync(dir)) {
        if (which(command) === undefined) throw new Error(`${command} is not installed`);
        linkTools(dir, [command]);
      }
      return dir;
    },
    shims: () => {
      shimCount++;
      const bin = join(root, `shims-${shimCount}`, 'bin');
      const state = join(root, `shims-${shimCount}`, 'state');
      mkdirSync(bin, { recursive: true });
      mkdirSync(state, { recursive: true });
      return {
        bin,
        state,
        add(name, body) {
          const file = join(bin, name);
          writeFileSync(
            file,
            `#!${BASH}\nset -u\nSTATE=${JSON.stringify(state)}\nprintf '%s\\n' "${name} $*" >>"$STATE/calls.log"\n${body}\n`,
          );
          chmodSync(file, 0o755);
        },
        set(file, content) {
          writeFileSync(join(state, file), content);
        },
        calls() {
          const log = join(state, 'calls.log');
          if (!existsSync(log)) return [];
          return spawnSync('cat', [log], { encoding: 'utf8' })
            .stdout.split('\n')
            .filter((line) => line !== '');
        },
      };
    },
    dispose: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Options of {@link makeRequest}. */
export interface RequestOptions {
  dryRun?: boolean;
  timeoutMs?: number;
  node?: string;
}

/** A valid RCS v1 request (checked with validateRcsRequest). */
export function makeRequest(
  action: string,
  parameters: Record<string, unknown> = {},
  options: RequestOptions = {},
): RcsRequest {
  const request = {
    message_metadata: {
      message_id: randomUUID(),
      trace_id: randomUUID().replaceAll('-', ''),
      timestamp: new Date().toISOString(),
      sender: { component: 'plugins-test', version: '0.1.0', host: 'test-host' },
    },
    routing: {
      action,
      node: options.node ?? 'test-node',
      transport: 'local',
      deploy_mode: 'ship' as const,
    },
    payload: {
      schema_version: 'rcs_v1' as const,
      data: {
        input_parameters: parameters,
        options: { dry_run: options.dryRun ?? false, timeout_ms: options.timeoutMs ?? 60_000 },
      },
    },
  };
  const validated = validateRcsRequest(request);
  if (!validated.ok)
    throw new Error(`test built an invalid RCS request: ${validated.error.message}`);
  return validated.value;
}

/** What one plugin run produced. */
export interface PluginRun {
  exitCode: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: string;
  /** stdout parsed as JSON (undefined when it is not JSON). */
  json: BpcsResponse | undefined;
  durationMs: number;
}

/** Options of {@link runPlugin}. */
export interface RunOptions {
  /** Shim dir placed first on PATH. */
  shims?: ShimDir;
  /** Hide jq (the pure-Bash JSON parser); otherwise BPCS_JSON_PARSER=jq is set. */
  withoutJq?: boolean;
  /** Extra PATH dirs appended after the base tools. */
  extraPath?: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** Runs a built plugin with bash, feeding `input` (an RCS object, or raw text/bytes) on stdin. */
export function runPlugin(
  workspace: PluginWorkspace,
  file: string,
  input: RcsRequest | string | Uint8Array,
  options: RunOptions = {},
): PluginRun {
  const path = [
    ...(options.shims ? [options.shims.bin] : []),
    options.withoutJq ? workspace.baseWithoutJq : workspace.baseWithJq,
    ...(options.extraPath ?? []),
  ].join(':');
  const stdin =
    typeof input === 'string' || input instanceof Uint8Array ? input : encodeRcsRequest(input);
  const started = Date.now();
  const result = spawnSync(BASH, [file], {
    input: stdin,
    env: {
      PATH: path,
      HOME: workspace.root,
      TMPDIR: workspace.root,
      // With jq on PATH the library still parses small requests in Bash (faster than starting
      // jq); force jq so that the jq variant of each test exercises the jq parser.
      ...(options.withoutJq === true ? {} : { BPCS_JSON_PARSER: 'jq' }),
      ...options.env,
    },
    timeout: options.timeoutMs ?? 20_000,
    maxBuffer: 8 * 1024 * 1024,
  });
  const stdout = result.stdout ?? Buffer.alloc(0);
  let json: BpcsResponse | undefined;
  try {
    json = JSON.parse(stdout.toString('utf8')) as BpcsResponse;
  } catch {
    json = undefined;
  }
  return {
    exitCode: result.status,
    signal: result.signal,
    stdout,
    stderr: result.stderr?.toString('utf8') ?? '',
    json,
    durationMs: Date.now() - started,
  };
}

/** Judges a run with the normative BPCS evaluation. */
export function evaluate(run: PluginRun, request: RcsRequest): PluginEvaluation {
  return evaluatePluginOutput(
    {
      exitCode: run.exitCode,
      signal: run.signal,
      stdout: new Uint8Array(run.stdout),
      stdoutTruncated: false,
    },
    {
      traceId: request.message_metadata.trace_id,
      action: request.routing.action,
      node: request.routing.node,
      requestMessageId: request.message_metadata.message_id,
    },
  );
}

/** Runs and evaluates; throws with stderr when the result is not a well-formed document. */
export function runAndEvaluate(
  workspace: PluginWorkspace,
  name: string,
  request: RcsRequest,
  options: RunOptions = {},
): { run: PluginRun; evaluation: PluginEvaluation; response: BpcsResponse } {
  const run = runPlugin(workspace, workspace.plugin(name), request, options);
  const evaluation = evaluate(run, request);
  const response = evaluation.response;
  if (response === null) {
    throw new Error(
      `plugin ${name} produced no valid BPCS document (exit ${run.exitCode}): ${evaluation.ok ? '' : evaluation.error.message}\nstdout: ${run.stdout.toString('utf8').slice(0, 2000)}\nstderr: ${run.stderr.slice(0, 2000)}`,
    );
  }
  return { run, evaluation, response };
}

/** The EPS code the evaluation reports (undefined when ok). */
export function errorCode(evaluation: PluginEvaluation): string | undefined {
  return evaluation.ok ? undefined : evaluation.error.code;
}

/**
 * The Bash library at `sourceLib` as the assembler ships it inside a plugin, every function kept
 * (a comment names them all) and the `@rune-cold` ones deferred; written to `dir`, path returned.
 */
export function assembleBpcsLibrary(sourceLib: string, dir: string): string {
  const names = [...readFileSync(sourceLib, 'utf8').matchAll(/^([A-Za-z_]\w*)\(\) \{/gm)].map(
    (match) => match[1],
  );
  const wrapper = [
    '#!/usr/bin/env bash',
    `# keeps: ${names.join(' ')}`,
    'source bpcs.sh # @rune-include bpcs.sh',
    '',
  ].join('\n');
  const file = join(dir, 'bpcs-assembled.sh');
  const text = assemblePluginSource(Buffer.from(wrapper), file, {
    includeDirs: [dirname(sourceLib)],
  }).content.toString('utf8');
  if (!text.includes('__rune_load_cold() {')) throw new Error('no deferred functions assembled');
  writeFileSync(file, text);
  return file;
}
