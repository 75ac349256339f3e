// The program behind every PATH shim rune-plugin-test installs. A shim is a two-line sh script:
//   exec <node> <this file> <spec.json> "$@"
// It records the call (command, arguments, whether it mutates) as one JSON line in the run's call
// log, picks the first rule whose `args` pattern matches the joined arguments, and answers with
// the rule's stdout/stderr/exit code (or the next entry of its `sequence`). Plain JavaScript so
// that it runs without a build step.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [specPath, ...args] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specPath, 'utf8'));
const joined = args.join(' ');
const matches = (pattern) => pattern === undefined || new RegExp(pattern).test(joined);

const ruleIndex = spec.rules.findIndex((rule) => matches(rule.args));
const rule = ruleIndex >= 0 ? spec.rules[ruleIndex] : undefined;
const mutating =
  rule?.mutating !== undefined ? rule.mutating : spec.mutating.some((entry) => matches(entry.args));

let response;
if (rule === undefined) {
  response = {
    stderr: `rune-plugin-test: no scripted answer for \`${[spec.command, ...args].join(' ')}\`; add a shim rule to the cases file\n`,
    exit_code: spec.defaultExitCode ?? 0,
  };
} else if (Array.isArray(rule.sequence)) {
  const counter = join(spec.stateDir, `${spec.command}.${ruleIndex}.count`);
  let calls = 0;
  try {
    calls = Number.parseInt(readFileSync(counter, 'utf8'), 10) || 0;
  } catch {
    // First call.
  }
  writeFileSync(counter, String(calls + 1));
  response = rule.sequence[Math.min(calls, rule.sequence.length - 1)];
} else {
  response = rule;
}

appendFileSync(
  spec.logFile,
  `${JSON.stringify({ command: spec.command, args, mutating, rule: ruleIndex })}\n`,
);
if (response.stdout) process.stdout.write(response.stdout);
if (response.stderr) process.stderr.write(response.stderr);
process.exitCode = response.exit_code ?? 0;
