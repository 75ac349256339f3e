/**
 * The transport conformance suite: one Vitest test per requirement of the {@link Transport}
 * contract, runnable against any implementation.
 *
 * The suite treats the transport as a black box. Every probe is a small Bash plugin (see
 * conformance-plugins.ts) shipped through the transport itself, and every fact about the node —
 * "did the timed-out process group really die?" — is checked by a second exec through the same
 * transport, so the suite works unchanged for a local process, an SSH server or an SSM endpoint.
 *
 * Requirements (ids appear in the test names):
 * - R01 specificationVersion, name and capabilities are well-formed.
 * - R02 stdin is delivered byte-exact (all 256 byte values, NUL, CR, invalid UTF-8, shell syntax).
 * - R03 stdin is closed after delivery (an empty stdin is an immediate EOF).
 * - R04 a large stdin (1-2 MiB) arrives complete and unaltered.
 * - R05 large binary stdout comes back complete and unaltered.
 * - R06 stdout and stderr are captured separately.
 * - R07 exit codes 0..5 and others (42, 126, 127, 255) are reported as `termination: 'exit'`.
 * - R08 a plugin killed by a signal is reported as `termination: 'signal'` with the signal name.
 * - R09 a timeout kills the whole process group and resolves with `termination: 'timeout'`.
 * - R10 aborting the AbortSignal kills the whole process group and resolves with `'cancelled'`.
 * - R11 a signal that is already aborted resolves with `'cancelled'` and does not hang.
 * - R12 stdout keeps the head and stderr the tail, with `truncated` flags, exactly at the caps.
 * - R13 output exactly at the caps is complete and not flagged truncated.
 * - R14 concurrent runs on one node do not mix their streams.
 * - R15 an unreachable node rejects with a RuneError whose code is expected for the transport.
 * - R16 results are well-formed: byte arrays, booleans, non-negative timings.
 * - R17 close() resolves and is idempotent.
 *
 * THE RULE (R18-R21): a run ends when the plugin process exits (or is killed on timeout or
 * cancel); at that moment the transport kills every process the run started and says so in
 * `containment`. These probes need `setsid` on the node, and by default look for leftovers in
 * this machine's `/proc` (`capabilities.findProcesses` for a node elsewhere).
 * - R18 on timeout, a child that called `setsid` (left the group and session) is killed too.
 * - R19 on cancel, a child that called `setsid` is killed too.
 * - R20 a plugin that prints its result and exits 0 while background children (one in its group,
 *   one after `setsid`) hold stdout open: `exit` 0 at once, output intact, the children killed and
 *   counted (`containment.killed >= 1`), not a timeout.
 * - R21 every result carries a well-formed `containment` (exit, signal, cancelled before start);
 *   `complete: false` always comes with a `detail`.
 *
 * PREFLIGHT (R22): `request.preflight.commands` are looked up on the node before the plugin
 * starts. A missing one rejects with `PLUGIN_PRECONDITION_FAILED` naming it (message and
 * `details.missing_commands`) and the plugin is never started; when all are present the plugin
 * runs as usual. A transport that does not implement preflight yet lists R22 in `knownFailures`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { type DeployMode, type ErrorCode, RuneError, TRANSPORT_NAME_PATTERN } from '@rune/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../sha256-hex.js';
import {
  type TargetNode,
  TRANSPORT_SPECIFICATION_VERSION,
  type Transport,
  type TransportExecRequest,
  type TransportExecResult,
  type TransportPlugin,
} from '../transport.js';
import {
  type ConformancePlugins,
  createConformancePlugins,
  expectedLeaverOutput,
  expectedLines,
  leftoverCommandLineFragment,
} from './conformance-plugins.js';
import { findProcessesByCommandLine } from './process-finder.js';

/** Default size of the large stdin and stdout payloads: 2 MiB. */
export const DEFAULT_CONFORMANCE_PAYLOAD_BYTES = 2 * 1024 * 1024;
/** Default time a plugin needs to start and record its pids before it is timed out or cancelled. */
export const DEFAULT_CONFORMANCE_STARTUP_MS = 1500;
/** Default time a transport may take, after a timeout or abort, to kill and resolve. */
export const DEFAULT_CONFORMANCE_KILL_GRACE_MS = 10_000;
/** Default number of simultaneous runs on one node (bounded by the transport's capability). */
export const DEFAULT_CONFORMANCE_CONCURRENCY = 4;

/**
 * What the suite may assume about a transport beyond its declared {@link Transport.capabilities}.
 * Every field is optional; the defaults describe a transport with no special limits.
 */
export interface ConformanceCapabilities {
  /** Deploy mode for the probes; defaults to `ship` when supported, else `preinstalled`. */
  deployMode?: DeployMode;
  /**
   * For deploy mode `preinstalled`: installs a probe plugin on the node and returns its absolute
   * path there. Required when the transport cannot ship.
   */
  installPlugin?: (plugin: TransportPlugin) => Promise<string>;
  /** Size of the large stdin payload (R04); also bounded by `capabilities.maxStdinBytes`. */
  maxPayloadBytes?: number;
  /** Largest stdout the transport returns in full (R05); defaults to 2 MiB. */
  maxOutputBytes?: number;
  /** Time a plugin needs to start and write its pid file (R09, R10). */
  startupMs?: number;
  /** Time allowed after a timeout or an abort until the result arrives (R09, R10, R11). */
  killGraceMs?: number;
  /** Simultaneous runs on one node (R14); bounded by `capabilities.maxConcurrentExecsPerNode`. */
  concurrency?: number;
  /**
   * Lists the live processes on the node whose command line contains a fragment (R18-R20).
   * Default: this machine's `/proc` (`findProcessesByCommandLine`), right for local, loopback SSH
   * and the local SSM endpoint; give your own when the node is another machine. With the default,
   * the suite also kills any survivor so that a failing transport leaves nothing behind.
   */
  findProcesses?: (fragment: string) => Promise<number[]>;
}

/** Options of {@link describeTransportConformance} that shape the test list itself. */
export interface TransportConformanceOptions {
  /**
   * Requirement ids (`'R18'`) this transport is known to fail. They run as expected failures
   * (`it.fails`): the suite stays green while they fail and turns red the day one passes, so the
   * list cannot go stale. Say why in a comment next to the list; an unknown id is an error.
   */
  knownFailures?: readonly string[];
}

/** What the suite's `setup` returns: the transport under test and the nodes to use. */
export interface TransportConformanceSetup {
  /** A fresh transport; the suite closes it in R17 (and again after all tests, idempotently). */
  transport: Transport;
  /** A reachable node on which bash and coreutils are available. */
  node: TargetNode;
  /** A node the transport cannot reach (e.g. a closed loopback port). */
  unreachableNode: TargetNode;
  /** The error codes an exec on `unreachableNode` may reject with (e.g. `CONNECTION_REFUSED`). */
  expectedUnreachableCodes: readonly ErrorCode[];
  /** Releases what `setup` started (servers, temp dirs). Runs after every test. */
  cleanup?: () => void | Promise<void>;
  /** Limits and helpers, see {@link ConformanceCapabilities}. */
  capabilities?: ConformanceCapabilities;
}

/** Produces the transport under test; called once, before the first test. */
export type TransportConformanceFactory = () =>
  | TransportConformanceSetup
  | Promise<TransportConformanceSetup>;

/** One requirement of the Transport contract, as the suite checks it. */
export interface TransportRequirement {
  id: string;
  title: string;
}

/** Every requirement the suite checks, by id; the tests run in this order except R17 (close), which runs last. */
export const TRANSPORT_CONFORMANCE_REQUIREMENTS: readonly TransportRequirement[] = [
  { id: 'R01', title: 'declares specificationVersion, a valid name and sane capabilities' },
  { id: 'R02', title: 'delivers stdin byte-exact (binary, NUL, invalid UTF-8, shell syntax)' },
  { id: 'R03', title: 'closes stdin after delivery (empty stdin is an immediate EOF)' },
  { id: 'R04', title: 'delivers a large stdin payload complete and unaltered' },
  { id: 'R05', title: 'returns a large binary stdout complete and unaltered' },
  { id: 'R06', title: 'keeps stdout and stderr separate' },
  { id: 'R07', title: "reports exit codes 0..5 and others as termination 'exit'" },
  { id: 'R08', title: "reports a plugin killed by a signal as termination 'signal'" },
  { id: 'R09', title: "kills the whole process group on timeout and reports 'timeout'" },
  { id: 'R10', title: "kills the whole process group on abort and reports 'cancelled'" },
  { id: 'R11', title: "resolves an exec with an already-aborted signal as 'cancelled'" },
  { id: 'R12', title: 'caps stdout (head) and stderr (tail) and sets the truncated flags' },
  { id: 'R13', title: 'does not flag output exactly at the caps as truncated' },
  { id: 'R14', title: 'runs concurrent execs on one node without mixing their streams' },
  { id: 'R15', title: 'rejects an unreachable node with an expected RuneError code' },
  { id: 'R16', title: 'returns well-formed results (bytes, flags, non-negative timings)' },
  { id: 'R17', title: 'close() resolves and is idempotent' },
  { id: 'R18', title: 'on timeout, also kills a child that called setsid' },
  { id: 'R19', title: 'on cancel, also kills a child that called setsid' },
  { id: 'R20', title: 'ends the run when the plugin exits, though children hold stdout open' },
  { id: 'R21', title: 'reports a well-formed containment on every result' },
  {
    id: 'R22',
    title:
      'preflight: a missing required command is PLUGIN_PRECONDITION_FAILED naming it, plugin not started',
  },
];

const title = (id: string): string => {
  const requirement = TRANSPORT_CONFORMANCE_REQUIREMENTS.find((entry) => entry.id === id);
  return `${id} ${requirement?.title ?? ''}`;
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (bytes: Uint8Array): string => decoder.decode(bytes);

/** Explains where two byte arrays first differ, for failure messages that help. */
export function describeByteDifference(actual: Uint8Array, expected: Uint8Array): string | null {
  const shared = Math.min(actual.byteLength, expected.byteLength);
  for (let i = 0; i < shared; i++) {
    if (actual[i] !== expected[i]) {
      return `first difference at byte ${i}: got 0x${actual[i]?.toString(16)}, expected 0x${expected[i]?.toString(16)} (lengths ${actual.byteLength} vs ${expected.byteLength})`;
    }
  }
  if (actual.byteLength !== expected.byteLength) {
    return `length ${actual.byteLength}, expected ${expected.byteLength} (identical up to byte ${shared})`;
  }
  return null;
}

/**
 * Registers the conformance suite as a Vitest `describe` block named `name`.
 *
 * `setup` runs once before the tests and returns the transport, a reachable node, an unreachable
 * node and the error codes the unreachable node may produce. Each test is one requirement of the
 * Transport contract (R01..R22, listed in {@link TRANSPORT_CONFORMANCE_REQUIREMENTS}). The node
 * needs bash, coreutils and `setsid`; the probes leave nothing behind on it. `conformanceOptions`
 * can list requirements the transport is known to fail ({@link TransportConformanceOptions}).
 *
 * @example
 * ```ts
 * describeTransportConformance('local', async () => ({
 *   transport: createLocalTransport(),
 *   node: { name: 'localhost' },
 *   unreachableNode: { name: 'no-such-node.invalid' },
 *   expectedUnreachableCodes: ['HOST_UNREACHABLE'],
 * }));
 * ```
 */
export function describeTransportConformance(
  name: string,
  setup: TransportConformanceFactory,
  conformanceOptions: TransportConformanceOptions = {},
): void {
  const knownFailures = new Set(conformanceOptions.knownFailures ?? []);
  for (const id of knownFailures) {
    if (!TRANSPORT_CONFORMANCE_REQUIREMENTS.some((requirement) => requirement.id === id)) {
      throw new Error(`knownFailures: no conformance requirement ${id}`);
    }
  }
  /** Registers requirement `id`: a test, or an expected failure when listed in knownFailures. */
  const requirement = (id: string, body: () => Promise<void> | void): void => {
    if (knownFailures.has(id)) it.fails(`${title(id)} (known failure)`, body);
    else it(title(id), body);
  };
  // R01-R16 share one transport and R17 closes it, so the order is part of the suite: it must
  // not be shuffled (`vitest --sequence.shuffle` ran R17 first and failed every later test).
  describe(`Transport conformance: ${name}`, { shuffle: false }, () => {
    let context: TransportConformanceSetup | undefined;
    const plugins: ConformancePlugins = createConformancePlugins();
    const installed = new Map<string, string>();

    const current = (): TransportConformanceSetup => {
      if (context === undefined) throw new Error('conformance setup did not complete');
      return context;
    };
    const options = (): ConformanceCapabilities => current().capabilities ?? {};
    const deployMode = (): DeployMode => {
      const declared = current().transport.capabilities.deployModes;
      return options().deployMode ?? (declared.includes('ship') ? 'ship' : 'preinstalled');
    };

    const prepare = async (plugin: TransportPlugin): Promise<TransportPlugin> => {
      if (deployMode() === 'ship') return plugin;
      const install = options().installPlugin;
      if (install === undefined) {
        throw new Error(
          'the transport does not support deploy mode "ship": give capabilities.installPlugin so the suite can preinstall its probes',
        );
      }
      let remotePath = installed.get(plugin.sha256);
      if (remotePath === undefined) {
        remotePath = await install(plugin);
        installed.set(plugin.sha256, remotePath);
      }
      return { ...plugin, remotePath };
    };

    interface ExecOptions {
      stdin?: Uint8Array | string;
      timeoutMs?: number;
      signal?: AbortSignal;
      maxStdoutBytes?: number;
      maxStderrBytes?: number;
      node?: TargetNode;
      preflight?: TransportExecRequest['preflight'];
    }

    const exec = async (
      plugin: TransportPlugin,
      execOptions: ExecOptions = {},
    ): Promise<TransportExecResult> => {
      const stdin = execOptions.stdin ?? new Uint8Array();
      const request: TransportExecRequest = {
        node: execOptions.node ?? current().node,
        plugin: await prepare(plugin),
        deployMode: deployMode(),
        stdin: typeof stdin === 'string' ? encoder.encode(stdin) : stdin,
        timeoutMs: execOptions.timeoutMs ?? 30_000,
        limits: {
          maxStdoutBytes: execOptions.maxStdoutBytes ?? 1024 * 1024,
          maxStderrBytes: execOptions.maxStderrBytes ?? 64 * 1024,
        },
        signal: execOptions.signal ?? new AbortController().signal,
        traceId: randomBytes(16).toString('hex'),
        ...(execOptions.preflight === undefined ? {} : { preflight: execOptions.preflight }),
      };
      return current().transport.exec(request);
    };

    const expectExit = (result: TransportExecResult, code: number, what: string): void => {
      expect(
        { termination: result.termination, exitCode: result.exitCode, signal: result.signal },
        `${what}; stderr: ${text(result.stderr).slice(-500)}`,
      ).toEqual({ termination: 'exit', exitCode: code, signal: null });
    };

    const expectBytes = (actual: Uint8Array, expected: Uint8Array, what: string): void => {
      const difference = describeByteDifference(actual, expected);
      expect(difference, `${what}: ${difference}`).toBeNull();
    };

    /** Runs the sleeper under `run`, then checks via a second exec that its pids are gone. */
    const expectProcessGroupKilled = async (
      run: (token: string) => Promise<TransportExecResult>,
      expected: 'timeout' | 'cancelled',
      deadlineMs: number,
    ): Promise<void> => {
      const token = randomUUID().replaceAll('-', '');
      const started = Date.now();
      const result = await run(token);
      const elapsed = Date.now() - started;
      const check = await exec(plugins.processCheck, { stdin: `${token}\n` });
      expectExit(check, 0, 'the process-check probe must run');
      const verdict = text(check.stdout).trim();
      expect(result.termination, `termination after ${elapsed} ms`).toBe(expected);
      expect(result.exitCode, 'exitCode must be null when not terminated by exit').toBeNull();
      expect(
        verdict,
        verdict === 'missing'
          ? 'the sleeper never wrote its pid file: it did not start in time (raise capabilities.startupMs) or TMPDIR differs between runs'
          : `the plugin or its background child survived (${verdict}): kill the whole process group, not only the direct child`,
      ).toBe('gone');
      expect(elapsed, `resolved ${elapsed} ms after start; allowed ${deadlineMs} ms`).toBeLessThan(
        deadlineMs,
      );
    };

    const findProcesses = (fragment: string): Promise<number[]> =>
      (options().findProcesses ?? findProcessesByCommandLine)(fragment);
    const pause = (ms: number): Promise<void> =>
      new Promise((resolve) => setTimeout(resolve, ms).unref?.());

    /** Watches for the containment probe's children while a run is in flight. */
    const watchLeftovers = (token: string) => {
      const fragment = leftoverCommandLineFragment(token);
      const seen = new Set<number>();
      let stopped = false;
      let markSeen: () => void = () => {};
      const appeared = new Promise<void>((resolve) => {
        markSeen = resolve;
      });
      const loop = (async () => {
        while (!stopped) {
          for (const pid of await findProcesses(fragment)) seen.add(pid);
          if (seen.size > 0) markSeen();
          await pause(50);
        }
      })();
      return {
        appeared,
        seen: () => [...seen],
        stop: async () => {
          stopped = true;
          await loop;
        },
      };
    };

    /**
     * The probe's children still alive once the run is over (waiting up to 5 s for them to die).
     * With the default finder, survivors are then killed so a failing transport leaves nothing.
     */
    const survivingLeftovers = async (token: string): Promise<number[]> => {
      const fragment = leftoverCommandLineFragment(token);
      const deadline = Date.now() + 5000;
      let alive = await findProcesses(fragment);
      while (alive.length > 0 && Date.now() < deadline) {
        await pause(100);
        alive = await findProcesses(fragment);
      }
      if (options().findProcesses === undefined) {
        for (const pid of alive) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // Gone meanwhile.
          }
        }
      }
      return alive;
    };

    const expectContainment = (result: TransportExecResult, what: string): void => {
      const containment = result.containment;
      expect(
        containment,
        `${what}: the result carries no containment; report what was killed when the run ended (see ContainmentReport)`,
      ).toBeDefined();
      if (containment === undefined) return;
      expect(['run-marker', 'process-group', 'none'], `${what}: containment.method`).toContain(
        containment.method,
      );
      expect(
        Number.isInteger(containment.killed) && containment.killed >= 0,
        `${what}: containment.killed = ${containment.killed}`,
      ).toBe(true);
      expect(typeof containment.complete, `${what}: containment.complete`).toBe('boolean');
      if (!containment.complete) {
        expect(
          typeof containment.detail === 'string' && containment.detail !== '',
          `${what}: incomplete containment must say why (detail)`,
        ).toBe(true);
      }
    };

    const newToken = (): string => randomUUID().replaceAll('-', '');

    beforeAll(async () => {
      context = await setup();
    });

    afterAll(async () => {
      const finished = context;
      context = undefined;
      if (finished === undefined) return;
      try {
        await finished.transport.close();
      } finally {
        await finished.cleanup?.();
      }
    });

    /** R01: `specificationVersion` is exactly {@link TRANSPORT_SPECIFICATION_VERSION}, the name matches the transport-name grammar, and capabilities are usable. */
    requirement('R01', () => {
      const { transport } = current();
      expect(transport.specificationVersion).toBe(TRANSPORT_SPECIFICATION_VERSION);
      expect(transport.name).toMatch(new RegExp(TRANSPORT_NAME_PATTERN));
      const capabilities = transport.capabilities;
      expect(capabilities.deployModes.length, 'at least one deploy mode').toBeGreaterThan(0);
      for (const mode of capabilities.deployModes) expect(['ship', 'preinstalled']).toContain(mode);
      expect(Number.isInteger(capabilities.maxConcurrentExecsPerNode)).toBe(true);
      expect(capabilities.maxConcurrentExecsPerNode).toBeGreaterThanOrEqual(1);
      expect(typeof capabilities.artifacts).toBe('boolean');
      expect(typeof capabilities.runAs).toBe('boolean');
      if (capabilities.artifacts) expect(typeof transport.fetchArtifact).toBe('function');
      if (capabilities.maxStdinBytes !== undefined) {
        expect(capabilities.maxStdinBytes).toBeGreaterThan(0);
      }
    });

    /** R02: stdin reaches the plugin exactly as given — every byte value, NUL, CR/LF, invalid UTF-8 and shell metacharacters, which must never be interpreted. */
    requirement('R02', async () => {
      const all = new Uint8Array(256).map((_, index) => index);
      const shell = encoder.encode('\n$(exit 7) `exit 7`; exit 7 \'"\\ \r\n{"a":1}\n');
      const payload = new Uint8Array([...all, 0, 0, 0xff, 0xfe, 0xc3, ...shell, ...all.reverse()]);
      const result = await exec(plugins.echo, { stdin: payload });
      expectExit(result, 0, 'cat must exit 0');
      expectBytes(result.stdout, payload, 'stdout must echo stdin byte for byte');
      expect(result.stdoutTruncated).toBe(false);
    });

    /** R03: after delivering stdin the transport closes it; a plugin reading to EOF finishes at once. */
    requirement('R03', async () => {
      const result = await exec(plugins.echo, { timeoutMs: 20_000 });
      expectExit(result, 0, 'cat on an empty, closed stdin must exit 0 (did stdin stay open?)');
      expect(result.stdout.byteLength).toBe(0);
    });

    /** R04: a large stdin (2 MiB by default, bounded by `maxStdinBytes`) arrives complete — the plugin reports its length and sha256. */
    requirement('R04', async () => {
      const { transport } = current();
      const size = Math.min(
        options().maxPayloadBytes ?? DEFAULT_CONFORMANCE_PAYLOAD_BYTES,
        transport.capabilities.maxStdinBytes ?? Number.POSITIVE_INFINITY,
      );
      const payload = new Uint8Array(randomBytes(size));
      const result = await exec(plugins.digest, { stdin: payload, timeoutMs: 60_000 });
      expectExit(result, 0, 'the digest probe must exit 0');
      expect(text(result.stdout).trim()).toBe(`${size} ${sha256Hex(payload)}`);
    });

    /** R05: a large binary stdout (up to `maxOutputBytes`) comes back complete within the cap. */
    requirement('R05', async () => {
      const { transport } = current();
      const size = Math.min(
        options().maxOutputBytes ?? DEFAULT_CONFORMANCE_PAYLOAD_BYTES,
        options().maxPayloadBytes ?? DEFAULT_CONFORMANCE_PAYLOAD_BYTES,
        transport.capabilities.maxStdinBytes ?? Number.POSITIVE_INFINITY,
      );
      const payload = new Uint8Array(randomBytes(size));
      const result = await exec(plugins.echo, {
        stdin: payload,
        timeoutMs: 60_000,
        maxStdoutBytes: size,
      });
      expectExit(result, 0, 'cat must exit 0');
      expect(result.stdoutTruncated, 'output exactly at the cap is not truncated').toBe(false);
      expectBytes(result.stdout, payload, 'large binary stdout must come back unaltered');
    });

    /** R06: stdout and stderr are two separate captures; nothing of one appears in the other (no PTY). */
    requirement('R06', async () => {
      const result = await exec(plugins.streams);
      expectExit(result, 0, 'the streams probe must exit 0');
      expect(text(result.stdout)).toBe('out-1\nout-2\n');
      expect(text(result.stderr)).toBe('err-1\nerr-2\n');
      expect(result.stdoutTruncated).toBe(false);
      expect(result.stderrTruncated).toBe(false);
    });

    /** R07: every exit code is reported as-is with `termination: 'exit'` and `signal: null` — the BPCS codes 0..5 and undocumented ones. */
    requirement('R07', async () => {
      for (const code of [0, 1, 2, 3, 4, 5, 42, 126, 127, 255]) {
        const result = await exec(plugins.exitCode, { stdin: `${code}\n` });
        expectExit(result, code, `exit ${code} must be reported as exit ${code}`);
      }
    });

    /** R08: a plugin killed by a signal is reported with `termination: 'signal'`, the signal name and `exitCode: null` — not as exit 128+n. */
    requirement('R08', async () => {
      for (const signal of ['TERM', 'KILL']) {
        const result = await exec(plugins.signal, { stdin: `${signal}\n` });
        expect(
          { termination: result.termination, exitCode: result.exitCode, signal: result.signal },
          `a plugin killed by SIG${signal}`,
        ).toEqual({ termination: 'signal', exitCode: null, signal: `SIG${signal}` });
      }
    });

    /** R09: past `timeoutMs` the transport kills the plugin's whole process group (a background child included) and resolves with `termination: 'timeout'`. */
    requirement('R09', async () => {
      const startup = options().startupMs ?? DEFAULT_CONFORMANCE_STARTUP_MS;
      const grace = options().killGraceMs ?? DEFAULT_CONFORMANCE_KILL_GRACE_MS;
      const timeoutMs = startup + 500;
      await expectProcessGroupKilled(
        (token) => exec(plugins.sleeper, { stdin: `${token}\n`, timeoutMs }),
        'timeout',
        timeoutMs + grace,
      );
    });

    /** R10: aborting the request's AbortSignal kills the whole process group and resolves with `termination: 'cancelled'`. */
    requirement('R10', async () => {
      const startup = options().startupMs ?? DEFAULT_CONFORMANCE_STARTUP_MS;
      const grace = options().killGraceMs ?? DEFAULT_CONFORMANCE_KILL_GRACE_MS;
      await expectProcessGroupKilled(
        (token) => {
          const controller = new AbortController();
          const timer = setTimeout(() => controller.abort(), startup);
          return exec(plugins.sleeper, {
            stdin: `${token}\n`,
            timeoutMs: 120_000,
            signal: controller.signal,
          }).finally(() => clearTimeout(timer));
        },
        'cancelled',
        startup + grace,
      );
    });

    /** R11: an exec whose signal is already aborted resolves promptly with `termination: 'cancelled'` (it must not run to completion). */
    requirement('R11', async () => {
      const grace = options().killGraceMs ?? DEFAULT_CONFORMANCE_KILL_GRACE_MS;
      const token = randomUUID().replaceAll('-', '');
      const started = Date.now();
      const result = await exec(plugins.sleeper, {
        stdin: `${token}\n`,
        timeoutMs: 120_000,
        signal: AbortSignal.abort(),
      });
      const elapsed = Date.now() - started;
      await exec(plugins.processCheck, { stdin: `${token}\n` });
      expect(result.termination).toBe('cancelled');
      expect(elapsed).toBeLessThan(grace);
    });

    /** R12: stdout keeps its first `maxStdoutBytes` bytes, stderr its last `maxStderrBytes`, and both set their `truncated` flag. */
    requirement('R12', async () => {
      const lines = 20_000;
      const result = await exec(plugins.lines, {
        stdin: `${lines}\n`,
        maxStdoutBytes: 1000,
        maxStderrBytes: 500,
      });
      expectExit(result, 0, 'the lines probe must exit 0');
      expect(result.stdoutTruncated, 'stdoutTruncated').toBe(true);
      expect(result.stderrTruncated, 'stderrTruncated').toBe(true);
      expect(text(result.stdout), 'stdout keeps the head').toBe(
        expectedLines('out', lines).slice(0, 1000),
      );
      expect(text(result.stderr), 'stderr keeps the tail').toBe(
        expectedLines('err', lines).slice(-500),
      );
    });

    /** R13: output of exactly the cap is complete and not truncated; one byte less of cap truncates. */
    requirement('R13', async () => {
      const exact = expectedLines('out', 10).length;
      const complete = await exec(plugins.lines, {
        stdin: '10\n',
        maxStdoutBytes: exact,
        maxStderrBytes: exact,
      });
      expectExit(complete, 0, 'the lines probe must exit 0');
      expect(text(complete.stdout)).toBe(expectedLines('out', 10));
      expect(text(complete.stderr)).toBe(expectedLines('err', 10));
      expect(complete.stdoutTruncated).toBe(false);
      expect(complete.stderrTruncated).toBe(false);
      const over = await exec(plugins.lines, {
        stdin: '10\n',
        maxStdoutBytes: exact - 1,
        maxStderrBytes: exact - 1,
      });
      expect(over.stdoutTruncated).toBe(true);
      expect(over.stderrTruncated).toBe(true);
      expect(over.stdout.byteLength).toBe(exact - 1);
      expect(over.stderr.byteLength).toBe(exact - 1);
    });

    /** R14: several execs on one node at once each get their own stdin and their own output. */
    requirement('R14', async () => {
      const { transport } = current();
      const count = Math.max(
        2,
        Math.min(
          transport.capabilities.maxConcurrentExecsPerNode,
          options().concurrency ?? DEFAULT_CONFORMANCE_CONCURRENCY,
        ),
      );
      const inputs = Array.from({ length: count }, (_, index) =>
        encoder.encode(`run-${index}-${randomUUID()}\n`.repeat(50 + index)),
      );
      const results = await Promise.all(
        inputs.map((stdin) => exec(plugins.delayedEcho, { stdin })),
      );
      results.forEach((result, index) => {
        expectExit(result, 0, `concurrent run ${index} must exit 0`);
        expectBytes(result.stdout, inputs[index]!, `concurrent run ${index} stdout`);
      });
    });

    /** R15: an exec on a node that cannot be reached rejects with a RuneError whose code is one the transport documents for it. */
    requirement('R15', async () => {
      const { unreachableNode, expectedUnreachableCodes } = current();
      let caught: unknown;
      try {
        await exec(plugins.echo, { node: unreachableNode, stdin: 'x' });
      } catch (error) {
        caught = error;
      }
      expect(caught, 'exec on an unreachable node must reject').toBeDefined();
      expect(RuneError.is(caught), `must reject with a RuneError, got ${String(caught)}`).toBe(
        true,
      );
      expect(expectedUnreachableCodes).toContain((caught as RuneError).code);
    });

    /** R16: a result has the documented shape: Uint8Array streams, boolean flags, non-negative finite timings with `totalMs >= execMs`. */
    requirement('R16', async () => {
      const result = await exec(plugins.streams);
      expect(result.stdout).toBeInstanceOf(Uint8Array);
      expect(result.stderr).toBeInstanceOf(Uint8Array);
      expect(typeof result.stdoutTruncated).toBe('boolean');
      expect(typeof result.stderrTruncated).toBe('boolean');
      for (const key of ['connectMs', 'execMs', 'totalMs'] as const) {
        const value = result.timings[key];
        expect(Number.isFinite(value) && value >= 0, `timings.${key} = ${value}`).toBe(true);
      }
      expect(result.timings.totalMs).toBeGreaterThanOrEqual(result.timings.execMs);
      if (result.metadata !== undefined) expect(typeof result.metadata).toBe('object');
    });

    /** R18: past `timeoutMs` the transport also kills a child that called `setsid` (it left the plugin's process group and session), and reports `containment`. */
    requirement('R18', async () => {
      const startup = options().startupMs ?? DEFAULT_CONFORMANCE_STARTUP_MS;
      const grace = options().killGraceMs ?? DEFAULT_CONFORMANCE_KILL_GRACE_MS;
      const token = newToken();
      const timeoutMs = startup + 500;
      const watch = watchLeftovers(token);
      const started = Date.now();
      let result: TransportExecResult;
      try {
        result = await exec(plugins.setsidHang, { stdin: `${token}\n`, timeoutMs });
      } finally {
        await watch.stop();
      }
      const elapsed = Date.now() - started;
      const survivors = await survivingLeftovers(token);
      expect(
        watch.seen().length,
        'the probe never started its setsid child before the timeout: raise capabilities.startupMs (or give capabilities.findProcesses when the node is not this machine)',
      ).toBeGreaterThan(0);
      expect(result.termination, `termination after ${elapsed} ms`).toBe('timeout');
      expect(
        survivors,
        `a child that called setsid survived the timeout (pids ${survivors.join(' ')}): killing the process group is not enough, kill every process carrying the run marker (SWEEP_FUNCTION_SH)`,
      ).toEqual([]);
      expectContainment(result, 'R18');
      expect(
        elapsed,
        `resolved ${elapsed} ms after start; allowed ${timeoutMs + grace} ms`,
      ).toBeLessThan(timeoutMs + grace);
    });

    /** R19: on abort the transport also kills a child that called `setsid`, and reports `containment`. The abort is sent once the child is seen running. */
    requirement('R19', async () => {
      const startup = options().startupMs ?? DEFAULT_CONFORMANCE_STARTUP_MS;
      const grace = options().killGraceMs ?? DEFAULT_CONFORMANCE_KILL_GRACE_MS;
      const token = newToken();
      const controller = new AbortController();
      const watch = watchLeftovers(token);
      let result: TransportExecResult;
      let readiness: string;
      let abortedAt: number;
      try {
        const running = exec(plugins.setsidHang, {
          stdin: `${token}\n`,
          timeoutMs: 120_000,
          signal: controller.signal,
        });
        readiness = await Promise.race([
          watch.appeared.then(() => 'seen'),
          running.then(() => 'ended before the child was seen'),
          pause(startup + grace).then(() => `not seen within ${startup + grace} ms`),
        ]);
        abortedAt = Date.now();
        controller.abort();
        result = await running;
      } finally {
        await watch.stop();
      }
      const elapsed = Date.now() - abortedAt;
      const survivors = await survivingLeftovers(token);
      expect(
        readiness,
        'the probe never started its setsid child: raise capabilities.startupMs (or give capabilities.findProcesses when the node is not this machine)',
      ).toBe('seen');
      expect(result.termination).toBe('cancelled');
      expect(
        survivors,
        `a child that called setsid survived the cancellation (pids ${survivors.join(' ')}): kill every process carrying the run marker (SWEEP_FUNCTION_SH)`,
      ).toEqual([]);
      expectContainment(result, 'R19');
      expect(elapsed, `resolved ${elapsed} ms after the abort; allowed ${grace} ms`).toBeLessThan(
        grace,
      );
    });

    /** R20: the run ends when the plugin exits — background children holding stdout open (one in the group, one after `setsid`) neither delay the result nor make it a timeout; they are killed and counted, the output is intact. */
    requirement('R20', async () => {
      const startup = options().startupMs ?? DEFAULT_CONFORMANCE_STARTUP_MS;
      const grace = options().killGraceMs ?? DEFAULT_CONFORMANCE_KILL_GRACE_MS;
      const token = newToken();
      const result = await exec(plugins.leaver, {
        stdin: `${token}\n`,
        timeoutMs: startup + grace,
      });
      const survivors = await survivingLeftovers(token);
      expect(
        { termination: result.termination, exitCode: result.exitCode },
        'the plugin exited 0 right after printing its result; a transport that waits for stdout EOF (held open by the children) reports a timeout instead',
      ).toEqual({ termination: 'exit', exitCode: 0 });
      expect(text(result.stdout), 'the output written before the exit is kept intact').toBe(
        expectedLeaverOutput(token),
      );
      expect(result.stdoutTruncated).toBe(false);
      expect(
        survivors,
        `children of an exited plugin survived (pids ${survivors.join(' ')}): at the plugin's exit, kill every process carrying the run marker`,
      ).toEqual([]);
      expectContainment(result, 'R20');
      expect(
        result.containment?.killed ?? 0,
        'containment.killed must count the children killed at the end of the run',
      ).toBeGreaterThanOrEqual(1);
    });

    /** R21: every result carries a well-formed `containment` — after a normal exit, a signal, and an exec cancelled before it started; `complete: false` always comes with a `detail`. */
    requirement('R21', async () => {
      expectContainment(await exec(plugins.streams), 'a plugin that exited');
      expectContainment(
        await exec(plugins.signal, { stdin: 'TERM\n' }),
        'a plugin killed by SIGTERM',
      );
      const token = newToken();
      const cancelled = await exec(plugins.sleeper, {
        stdin: `${token}\n`,
        signal: AbortSignal.abort(),
      });
      await exec(plugins.processCheck, { stdin: `${token}\n` });
      expectContainment(cancelled, 'an exec whose signal was already aborted');
    });

    /** R22: preflight — a missing required command rejects with PLUGIN_PRECONDITION_FAILED naming it (message and details.missing_commands) and the plugin never starts; with every command present the plugin runs. */
    requirement('R22', async () => {
      const missing = `rune-conformance-missing-${randomBytes(6).toString('hex')}`;
      const token = randomUUID().replaceAll('-', '');
      let rejected: unknown;
      try {
        // The sleeper records its pids under the token once it starts: it must never start.
        await exec(plugins.sleeper, {
          stdin: `${token}\n`,
          timeoutMs: 3000,
          preflight: { commands: ['cat', missing] },
        });
      } catch (error) {
        rejected = error;
      }
      const check = await exec(plugins.processCheck, { stdin: `${token}\n` });
      expect(
        text(check.stdout).trim(),
        'the plugin started although a required command is missing: check request.preflight before starting it',
      ).toBe('missing');
      expect(
        RuneError.is(rejected) ? rejected.code : rejected,
        'a missing required command must reject with PLUGIN_PRECONDITION_FAILED',
      ).toBe('PLUGIN_PRECONDITION_FAILED');
      const error = rejected as RuneError;
      expect(error.message, 'the message names the missing command').toContain(missing);
      expect(error.details?.missing_commands).toEqual([missing]);
      const present = await exec(plugins.echo, {
        stdin: 'preflight-ok',
        preflight: { commands: ['cat', 'sh'] },
      });
      expectExit(present, 0, 'with every required command present the plugin runs');
      expect(text(present.stdout)).toBe('preflight-ok');
    });

    /** R17: close() resolves, and a second close() resolves too. */
    requirement('R17', async () => {
      const { transport } = current();
      await expect(transport.close()).resolves.toBeUndefined();
      await expect(transport.close()).resolves.toBeUndefined();
    });
  });
}
