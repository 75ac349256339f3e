/**
 * `rune rules test alert.json` and `rune rules list`: the alert rules of `rune serve`
 * (`[server] alert_rules`, or `--rules FILE`), offline. `test` reads an alert payload (an
 * Alertmanager v4 webhook, a PagerDuty V3 webhook, or the generic `{"alerts": [...]}`), and
 * shows for each alert which rule matches and what would run on which node — or why it would be
 * refused — without running anything, contacting any node or reading any receiver secret.
 */
import { readFileSync } from 'node:fs';
import { loadInventory } from '@rune/core';
import { RuneError } from '@rune/protocol';
import { serverSection } from '@rune/server/config';
import type { CliIo } from '../cli-io.js';
import { formatJson } from '../render/json.js';
import { terminalSafe } from '../render/terminal-text.js';
import { type CommonArgs, guarded, loadCliConfig } from './command-context.js';

/** The flags of the rules commands. */
export interface RulesArgs extends CommonArgs {
  rules?: string;
  file?: string;
  receiver?: string;
}

type Server = typeof import('@rune/server');

async function loadRules(io: CliIo, args: RulesArgs) {
  const loaded = loadCliConfig(io, args);
  const path = args.rules ?? serverSection(loaded).alert_rules;
  if (path === undefined) {
    throw new RuneError(
      'INVALID_ARGUMENT',
      'no alert rules: pass --rules FILE or set [server] alert_rules',
      { details: { key: 'server.alert_rules' } },
    );
  }
  const server = await import('@rune/server');
  return { server, loaded, rules: server.loadAlertRules(path, io.env, { readSecrets: false }) };
}

function throttleText(rule: import('@rune/server').CompiledRule): string {
  const t = rule.spec.throttle ?? {};
  const parts = [
    t.once_after === undefined ? '' : `once_after ${t.once_after}`,
    t.accumulate_within === undefined ? '' : `${t.threshold} within ${t.accumulate_within}`,
    t.once_within === undefined ? '' : `once_within ${t.once_within}`,
  ].filter((part) => part !== '');
  const by =
    rule.throttle.groupBy === 'fingerprint' ? 'fingerprint' : rule.throttle.groupBy.join('+');
  return `${parts.length === 0 ? 'none' : parts.join(', ')} (group by ${by})`;
}

function matchText(rule: import('@rune/server').CompiledRule): string {
  const show = (record: Record<string, unknown> | undefined, prefix: string) =>
    Object.entries(record ?? {}).map(([key, matcher]) => {
      if (typeof matcher === 'string') return `${prefix}${key}=${matcher}`;
      const m = matcher as { equals?: string; regex?: string; present?: boolean };
      if (m.equals !== undefined) return `${prefix}${key}=${m.equals}`;
      if (m.regex !== undefined) return `${prefix}${key}=~${m.regex}`;
      return m.present === true ? `${prefix}${key}` : `!${prefix}${key}`;
    });
  const status = rule.spec.match.status ?? 'firing';
  return [
    status,
    ...show(rule.spec.match.labels, ''),
    ...show(rule.spec.match.annotations, 'annotations.'),
  ].join(' ');
}

/** `rune rules list`. */
export function rulesListCommand(args: RulesArgs, io: CliIo): Promise<number> {
  return guarded(io, args, async () => {
    const { rules } = await loadRules(io, args);
    const listed = rules.rules.map((rule) => ({
      name: rule.spec.name,
      receivers: rule.spec.receivers ?? null,
      match: rule.spec.match,
      action: rule.spec.action ?? null,
      workflow: rule.spec.workflow ?? null,
      target: rule.spec.target ?? { from_label: 'instance', strip_port: true },
      params: rule.spec.params ?? {},
      ...(rule.spec.workflow === undefined
        ? {}
        : { inputs: rule.spec.inputs ?? {}, node_input: rule.spec.node_input ?? 'nodes' }),
      throttle: rule.spec.throttle ?? {},
    }));
    if (args.output === 'json' || args.output === 'jsonl') {
      io.out(
        args.output === 'json'
          ? formatJson({
              file: rules.file,
              receivers: [...rules.receivers.values()].map((r) => ({
                name: r.name,
                kind: r.kind,
                principal: r.principal,
              })),
              rules: listed,
            })
          : listed.map((rule) => `${JSON.stringify(rule)}\n`).join(''),
      );
      return 0;
    }
    const lines = [
      `${terminalSafe(rules.file)}: ${rules.rules.length} rule(s), receivers ${[...rules.receivers.values()].map((r) => `${r.name} (${r.kind})`).join(', ') || 'none'}`,
    ];
    for (const rule of rules.rules) {
      lines.push(
        `${terminalSafe(rule.spec.name)}: ${terminalSafe(matchText(rule))} -> ${terminalSafe(rule.spec.action ?? `workflow ${rule.spec.workflow ?? ''}`)}${rule.spec.receivers === undefined ? '' : ` [receivers ${rule.spec.receivers.join(', ')}]`}; throttle ${terminalSafe(throttleText(rule))}`,
      );
    }
    io.out(`${lines.join('\n')}\n`);
    return 0;
  });
}

function detectKind(body: unknown): 'alertmanager' | 'pagerduty' | 'generic' {
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    if ('event' in body) return 'pagerduty';
    if ('version' in body) return 'alertmanager';
  }
  return 'generic';
}

/** `rune rules test alert.json [--rules FILE] [--receiver NAME]`. */
export function rulesTestCommand(args: RulesArgs, io: CliIo): Promise<number> {
  return guarded(io, args, async () => {
    const { server, loaded, rules } = await loadRules(io, args);
    const file = String(args.file ?? '');
    let body: unknown;
    try {
      body = JSON.parse(file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8'));
    } catch (error) {
      throw new RuneError(
        error instanceof SyntaxError ? 'MALFORMED_JSON' : 'INVALID_ARGUMENT',
        error instanceof SyntaxError ? `${file} is not valid JSON` : `cannot read ${file}`,
        { cause: error, details: { file } },
      );
    }
    const kind = detectKind(body);
    const receiver =
      args.receiver === undefined
        ? ([...rules.receivers.values()].find((candidate) => candidate.kind === kind) ?? {
            name: kind,
            kind,
            principal: `alert:${kind}`,
            secrets: [],
            replayWindowMs: 0,
          })
        : rules.receivers.get(args.receiver);
    if (receiver === undefined) {
      throw new RuneError(
        'ALERT_RECEIVER_UNKNOWN',
        `no receiver "${args.receiver}" in ${rules.file}`,
        {
          details: { receiver: args.receiver },
        },
      );
    }
    const alerts = server.normalizePayload(
      receiver as import('@rune/server').ResolvedReceiver,
      body,
    );
    const inventoryPath = loaded.config.core.inventory;
    const inventory = new Set(
      inventoryPath === undefined
        ? []
        : (await loadInventory(inventoryPath)).nodes.map((node) => node.name),
    );
    const results = alerts.map((alert, index) =>
      evaluate(server, rules, receiver.name, alert, index, inventory),
    );
    if (args.output === 'json' || args.output === 'jsonl') {
      io.out(
        args.output === 'json'
          ? formatJson({ receiver: receiver.name, kind, alerts: results })
          : results.map((result) => `${JSON.stringify(result)}\n`).join(''),
      );
      return 0;
    }
    const lines: string[] = [];
    for (const result of results) {
      const labels = Object.entries(result.labels)
        .map(([key, value]) => `${key}=${value}`)
        .join(' ');
      lines.push(`alert ${result.index + 1}: ${result.status} ${terminalSafe(labels)}`);
      if (result.rule === null) {
        lines.push(
          `  no rule matches${result.status === 'resolved' ? ' (a resolved alert still cancels what its firing alert queued)' : ''}`,
        );
      } else if (result.refused !== null) {
        lines.push(
          `  rule ${terminalSafe(result.rule)}: would be refused: ${result.refused.code}: ${terminalSafe(result.refused.message)}`,
        );
      } else {
        lines.push(
          `  rule ${terminalSafe(result.rule)}: would run ${terminalSafe(result.request?.action ?? '')} on ${terminalSafe(result.node ?? '')} with ${terminalSafe(JSON.stringify(result.request?.params ?? {}))}${result.request?.options === undefined ? '' : ` options ${terminalSafe(JSON.stringify(result.request.options))}`}`,
          `  throttle: ${terminalSafe(result.throttle ?? '')}`,
          result.request?.action.startsWith('workflow:') === true
            ? "  (inputs are checked against the workflow's typed inputs when the server starts it; an array input gets the node as a list)"
            : '  (parameters are checked against the manifest when the server plans the run)',
        );
      }
    }
    io.out(`${lines.join('\n')}\n`);
    return 0;
  });
}

function evaluate(
  server: Server,
  rules: import('@rune/server').AlertRules,
  receiver: string,
  alert: import('@rune/server').NormalizedAlert,
  index: number,
  inventory: ReadonlySet<string>,
) {
  const rule = server.matchRule(rules.rules, alert, receiver);
  const base = {
    index,
    status: alert.status,
    labels: alert.labels,
    fingerprint: alert.fingerprint,
  };
  if (rule === undefined)
    return { ...base, rule: null, request: null, node: null, throttle: null, refused: null };
  try {
    const built = server.buildRunRequest(rule, alert, inventory);
    return {
      ...base,
      rule: rule.spec.name,
      request: built.request,
      node: built.node,
      group: server.groupKey(rule, alert),
      throttle: throttleText(rule),
      refused: null,
    };
  } catch (error) {
    const runeError = RuneError.from(error, 'INVALID_PARAMETERS');
    return {
      ...base,
      rule: rule.spec.name,
      request: null,
      node: null,
      throttle: throttleText(rule),
      refused: { code: runeError.code, message: runeError.message },
    };
  }
}
