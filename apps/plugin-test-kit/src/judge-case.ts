/**
 * Judging one case run: the plugin's output goes through `evaluatePluginOutput()` (the rules
 * `rune run` applies), then named checks, in this order, each adding what it expected and what it
 * found wrong:
 *
 * 1. {@link checkTimeout} — ran past its timeout (fails at once);
 * 2. {@link checkProtocol} — a breach of the plugin protocol (fails at once, naming the shim call
 *    whose output leaked to stdout when it can);
 * 3. {@link checkInvalidInputAnswer} — generated invalid input must be answered with exit 2;
 * 4. {@link checkCaseExpectations} — the cases file's `expect` (exit code, result, error codes,
 *    output_data, summary, stderr, calls made and not made);
 * 5. {@link checkDryRunHonesty} — a dry run calls no mutating command and writes nothing outside
 *    TMPDIR;
 * 6. warnings ({@link caseWarning}): valid input rejected, temporary files left behind.
 */
import {
  evaluatePluginOutput,
  type MrsManifest,
  type PluginEvaluation,
  type RcsRequest,
  UNTRACED_TRACE_ID,
} from '@rune/protocol';
import { explain, isProtocolBreach } from './explain.js';
import type { TestCase } from './generated-cases.js';
import { MISSING, matchValue, resolvePointer } from './matchers.js';
import type { PluginProcessResult } from './plugin-process.js';
import type { CheckResult } from './report.js';
import { formatCall, type ShimCall } from './shims.js';

/** What running one case produced. */
export interface CaseRun {
  request: RcsRequest | null;
  stdin: Uint8Array;
  process: PluginProcessResult;
  calls: ShimCall[];
  leftovers: string[];
  timeoutMs: number;
}

/** The verdict of a case: a check result without its name and duration. */
export type CaseVerdict = Omit<CheckResult, 'durationMs' | 'name'>;

const decoder = new TextDecoder();
const text = (bytes: Uint8Array): string => decoder.decode(bytes);
const tail = (value: string, length = 1200): string =>
  value.length > length ? `…${value.slice(-length)}` : value;

/** "pointer: message" lines for schema violations, or undefined when there are none. */
export function describeViolations(
  details: Record<string, unknown> | undefined,
): string | undefined {
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

/** Everything the checks look at. */
interface CaseFacts {
  testCase: TestCase;
  run: CaseRun;
  manifest: MrsManifest;
  stdoutText: string;
  stderrText: string;
  /** Details of the check result (shared: checks may add the EPS error). */
  details: Record<string, unknown>;
}

/** What the expectation checks collect, in the order they ran. */
interface Findings {
  expected: string[];
  problems: string[];
  fixes: string[];
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

function failed(
  facts: CaseFacts,
  message: string,
  expected: string,
  actual: string,
  fix: string,
): CaseVerdict {
  return { status: 'fail', message, expected, actual, fix, details: facts.details };
}

/** Check 1: a case that ran past its timeout fails, whatever it printed. */
function checkTimeout(facts: CaseFacts): CaseVerdict | undefined {
  const { run, manifest } = facts;
  if (!run.process.timedOut) return undefined;
  return failed(
    facts,
    `ran past its timeout of ${run.timeoutMs} ms and was killed`,
    `finishes within ${run.timeoutMs} ms (manifest timeout_ms ${manifest.timeout_ms})`,
    `still running after ${run.timeoutMs} ms`,
    'Bound every wait (e.g. `timeout 10 systemctl ...`, retry loops with a deadline derived from options.timeout_ms), or raise timeout_ms in the manifest.',
  );
}

/** The shim call whose scripted output is the stray text on stdout, if one is. */
function strayOutputSource(facts: CaseFacts, evaluation: PluginEvaluation): ShimCall | undefined {
  if (evaluation.ok) return undefined;
  const leading = String(
    evaluation.error.details?.leading_text ?? evaluation.error.details?.trailing_text ?? '',
  );
  if (leading === '') return undefined;
  return facts.run.calls.find((call) => {
    const rule = facts.testCase.shims[call.command];
    const rules = rule === undefined ? [] : Array.isArray(rule) ? rule : [rule];
    const answer = rules[call.rule];
    const printed = [answer?.stdout, ...(answer?.sequence ?? []).map((entry) => entry.stdout)];
    return printed.some(
      (value) => value !== undefined && value.trim() !== '' && leading.includes(value.trim()),
    );
  });
}

/** Check 2: a breach of the plugin protocol (bad JSON, wrong trace id, ...) fails at once. */
function checkProtocol(
  facts: CaseFacts,
  evaluation: PluginEvaluation,
  outcome: string,
): CaseVerdict | undefined {
  if (evaluation.ok || !isProtocolBreach(evaluation.error.code, evaluation.error.category)) {
    return undefined;
  }
  const help = explain(evaluation.error.code);
  let fix = help.fix;
  const source = strayOutputSource(facts, evaluation);
  if (source !== undefined) {
    fix = `The stray text is the output of \`${formatCall(source)}\`, which the plugin let through to stdout. ${fix}`;
  }
  facts.details.error = evaluation.error.toJSON();
  const { stdoutText } = facts;
  const excerpt = stdoutText.trim().slice(0, 160);
  const got =
    excerpt === ''
      ? outcome
      : `${outcome}; stdout: ${JSON.stringify(excerpt)}${stdoutText.trim().length > 160 ? '…' : ''}`;
  const violations = describeViolations(evaluation.error.details);
  return failed(
    facts,
    `${evaluation.error.code}: ${evaluation.error.message}`,
    help.expected,
    violations === undefined ? got : `${got}\n${violations}`,
    fix,
  );
}

/** Check 3: generated invalid input must be refused with exit 2, result failure and an EPS error. */
function checkInvalidInputAnswer(
  facts: CaseFacts,
  evaluation: PluginEvaluation,
  findings: Findings,
): void {
  if (facts.testCase.kind !== 'invalid-input') return;
  const { process } = facts.run;
  const response = evaluation.response;
  findings.expected.push('exit 2 with result "failure" and an EPS error (invalid input)');
  if (process.exitCode !== 2 || response?.payload.result !== 'failure' || response.error === null) {
    findings.problems.push(
      process.exitCode === 0
        ? 'the plugin accepted invalid input'
        : `the plugin did not answer invalid input with exit 2`,
    );
    findings.fixes.push(
      'Validate the request (schema_version, required parameters, types, ranges) before acting, and answer a bad one with result "failure", an EPS error (e.g. code INVALID_PARAMETERS) and exit 2 — never by crashing.',
    );
  }
}

/** Check 4: what the cases file's `expect` asks for. */
function checkCaseExpectations(
  facts: CaseFacts,
  evaluation: PluginEvaluation,
  findings: Findings,
): void {
  const { process } = facts.run;
  const response = evaluation.response;
  const want = facts.testCase.expect;
  const { expected, problems } = findings;
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
    if (!facts.stderrText.includes(want.stderr_contains))
      problems.push(`stderr does not contain ${JSON.stringify(want.stderr_contains)}`);
  }
  const made = facts.run.calls.map(formatCall);
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
}

/** Check 5: a dry run calls no mutating command and writes nothing outside TMPDIR. */
function checkDryRunHonesty(facts: CaseFacts, findings: Findings): void {
  if (!facts.testCase.dryRun) return;
  const { run } = facts;
  const mutating = run.calls.filter((call) => call.mutating).map(formatCall);
  findings.expected.push('dry-run changes nothing');
  if (mutating.length > 0) {
    findings.problems.push(
      `dry-run called mutating command(s): ${mutating.map((call) => `\`${call}\``).join(', ')}`,
    );
    findings.fixes.push(
      'When options.dry_run is true, report what would be done (output_data) without running commands that change the node.',
    );
  }
  const written = run.leftovers.filter((path) => !path.startsWith('$TMPDIR/'));
  if (written.length > 0) {
    findings.problems.push(
      `dry-run wrote files outside TMPDIR: ${written.slice(0, 10).join(', ')}`,
    );
    findings.fixes.push(
      'In dry-run, write nothing but temporary files under $TMPDIR (and remove those before exiting).',
    );
  }
}

/** Check 6: what passes but deserves a warning — the first that applies. */
function caseWarning(facts: CaseFacts): string | undefined {
  const { testCase, run } = facts;
  if (testCase.kind === 'valid' && run.process.exitCode === 2) {
    return 'the plugin rejected input that the control node considers valid (exit 2)';
  }
  const temporary = run.leftovers.filter((path) => path.startsWith('$TMPDIR/'));
  if (temporary.length > 0) {
    return `left temporary files behind: ${temporary.slice(0, 5).join(', ')}`;
  }
  return undefined;
}

/** Judges one case run (see the module header for the checks and their order). */
export function judgeCase(testCase: TestCase, run: CaseRun, manifest: MrsManifest): CaseVerdict {
  const { process } = run;
  const stdoutText = text(process.stdout);
  const stderrText = text(process.stderr);
  const facts: CaseFacts = {
    testCase,
    run,
    manifest,
    stdoutText,
    stderrText,
    details: {
      exit_code: process.exitCode,
      signal: process.signal,
      duration_ms: Math.round(process.durationMs),
      dry_run: testCase.dryRun,
      parameters: testCase.parameters,
      calls: run.calls.map(formatCall),
      stdout: tail(stdoutText, 2000),
      stderr_tail: tail(stderrText),
    },
  };
  const timedOut = checkTimeout(facts);
  if (timedOut !== undefined) return timedOut;
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
  const breach = checkProtocol(facts, evaluation, outcome);
  if (breach !== undefined) return breach;

  const findings: Findings = { expected: [], problems: [], fixes: [] };
  checkInvalidInputAnswer(facts, evaluation, findings);
  checkCaseExpectations(facts, evaluation, findings);
  checkDryRunHonesty(facts, findings);
  if (findings.problems.length > 0) {
    if (findings.fixes.length === 0) {
      findings.fixes.push(
        testCase.origin === 'cases-file'
          ? 'Compare the plugin with the case in the cases file: either the plugin or the expectation is wrong. stderr and the shim calls are in the details.'
          : 'See the details (stderr, shim calls).',
      );
    }
    if (!evaluation.ok) facts.details.error = evaluation.error.toJSON();
    return failed(
      facts,
      findings.problems.join('; '),
      findings.expected.join(', '),
      outcome,
      findings.fixes.join(' '),
    );
  }
  const warning = caseWarning(facts);
  if (warning !== undefined) {
    return { status: 'warn', message: warning, actual: outcome, details: facts.details };
  }
  return { status: 'pass', message: outcome, details: facts.details };
}
