/**
 * `rune policy check` and `rune policy test`: the RBAC policy of `rune serve`, offline. They load
 * the policy (`--policy` or `[server] policy`) and the inventory, plan the request as the server
 * would, and print the decision and the rule that decided. No server is needed, nothing runs,
 * nothing is audited. Exit codes: check — 0 allow (also when approval is needed), 4 deny;
 * test — 0 when every case holds, 1 otherwise.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { CliIo } from '../cli-io.js';
import { formatJson } from '../render/json.js';
import { terminalSafe } from '../render/terminal-text.js';
import { type CommonArgs, guarded, loadCliConfig } from './command-context.js';

/** The flags of `rune policy check`. */
export interface PolicyCheckArgs extends CommonArgs {
  as?: string;
  group?: string | string[];
  role?: string | string[];
  verb?: string;
  action?: string;
  node?: string | string[];
  param?: string | string[];
  policy?: string;
}

/** The flags of `rune policy test`. */
export interface PolicyTestArgs extends CommonArgs {
  cases?: string;
  policy?: string;
}

const list = (value: string | string[] | undefined): string[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** `rune policy check --as alice --action restart-docker --node @web`. */
export function policyCheckCommand(args: PolicyCheckArgs, io: CliIo): Promise<number> {
  return guarded(io, args, async () => {
    const loaded = loadCliConfig(io, args);
    const server = await import('@rune/server');
    const checker = server.createOfflineChecker({
      config: loaded,
      env: io.env,
      ...(args.policy === undefined ? {} : { policyPath: resolve(args.policy) }),
    });
    try {
      const answer = await checker.check({
        as: String(args.as ?? ''),
        groups: list(args.group).flatMap((group) => group.split(',')),
        roles: list(args.role).flatMap((role) => role.split(',')),
        verb: (args.verb ?? 'run') as import('@rune/server').PolicyVerb,
        ...(args.action === undefined ? {} : { action: args.action }),
        nodes: list(args.node),
        paramArgs: list(args.param),
      });
      const { decision } = answer;
      if (args.output === 'json' || args.output === 'jsonl') {
        const document = {
          outcome: answer.outcome,
          approvals: answer.approvals,
          nodes: answer.nodes,
          ...decision,
          policy: checker.policy.source,
        };
        io.out(args.output === 'json' ? formatJson(document) : `${JSON.stringify(document)}\n`);
      } else {
        const head =
          answer.outcome === 'approval'
            ? `allow after ${answer.approvals} approval${answer.approvals > 1 ? 's' : ''}`
            : answer.outcome;
        io.out(`${head} (rule ${terminalSafe(decision.rule)})\n`);
        io.err(
          `${terminalSafe(decision.reason)}\nnodes: ${terminalSafe(answer.nodes.join(', ') || '-')}; roles: ${terminalSafe(decision.roles.join(', ') || 'none')}; policy ${terminalSafe(checker.policy.source)}\n`,
        );
      }
      return decision.allowed ? 0 : 4;
    } finally {
      await checker.close();
    }
  });
}

/** `rune policy test cases.yaml`. */
export function policyTestCommand(args: PolicyTestArgs, io: CliIo): Promise<number> {
  return guarded(io, args, async () => {
    const loaded = loadCliConfig(io, args);
    const server = await import('@rune/server');
    const file = resolve(String(args.cases ?? ''));
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      const { RuneError } = await import('@rune/protocol');
      throw new RuneError('INVALID_ARGUMENT', `cannot read ${file}`, { cause: error });
    }
    const parsed = server.parsePolicyCases(text, file);
    const policyPath =
      args.policy === undefined
        ? parsed.policy === undefined
          ? undefined
          : resolve(dirname(file), parsed.policy)
        : resolve(args.policy);
    const checker = server.createOfflineChecker({
      config: loaded,
      env: io.env,
      ...(policyPath === undefined ? {} : { policyPath }),
    });
    try {
      const results = await server.runPolicyCases(checker, parsed.cases);
      const failed = results.filter((result) => !result.passed);
      if (args.output === 'json' || args.output === 'jsonl') {
        const document = { passed: results.length - failed.length, failed: failed.length, results };
        io.out(args.output === 'json' ? formatJson(document) : `${JSON.stringify(document)}\n`);
      } else {
        for (const result of results) {
          io.out(
            `${result.passed ? 'ok  ' : 'FAIL'} ${terminalSafe(result.name)}: expected ${terminalSafe(result.expected)}, got ${terminalSafe(result.actual)}\n`,
          );
          if (!result.passed) io.out(`     ${terminalSafe(result.reason)}\n`);
        }
        io.out(`${results.length - failed.length} passed, ${failed.length} failed\n`);
      }
      return failed.length === 0 ? 0 : 1;
    } finally {
      await checker.close();
    }
  });
}
