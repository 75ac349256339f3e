/**
 * The fine view checks of the listings that are not about one run: `GET /v1/actions` lists the
 * actions the subject may view, `GET /v1/actions/{action}` refuses (audited) an action it may
 * not view, `GET /v1/nodes` lists (and matches) only the nodes it may view, and `GET /v1/audit`
 * returns only records whose action and every node it may view. A node is viewable when a `view`
 * rule of any action covers it; an action, when a `view` rule names it (any nodes). The coarse
 * check before the handler still needs `view` in some rule. Decisions here are not audited (a
 * listing would write one record per row); a refused single action is.
 */
import type { Principal } from '../auth/tokens.js';
import type { ActionSummary, NodeSummary, ServerLauncher } from '../runs/launcher.js';
import type { PolicyEnforcer } from './enforcer.js';
import type { PolicySubject } from './policy.js';
import { actionTags } from './route-guard.js';

/** What one subject may view, decided once per listing. */
export interface ViewScope {
  /** Whether the subject may view `action` (with these manifest tags). */
  action(name: string, tags: readonly string[]): Promise<boolean>;
  /** The subset of `nodes` the subject may view. */
  nodes(nodes: readonly string[]): Promise<Set<string>>;
}

/** The view scope of `principal` under the policy in force. */
export function viewScope(policy: PolicyEnforcer, principal: Principal): ViewScope {
  const subject: PolicySubject = policy.subjectOf(principal);
  const actions = new Map<string, Promise<boolean>>();
  return {
    action(name, tags) {
      let decided = actions.get(name);
      if (decided === undefined) {
        decided = policy
          .evaluate(subject, { verb: 'view', action: name, tags })
          .then((decision) => decision.allowed);
        actions.set(name, decided);
      }
      return decided;
    },
    async nodes(nodes) {
      if (nodes.length === 0) return new Set();
      const decision = await policy.evaluate(subject, { verb: 'view', nodes });
      const refused = new Set(decision.offending.map((refusal) => refusal.node));
      return new Set(nodes.filter((node) => !refused.has(node)));
    },
  };
}

/** The actions of a listing the subject may view. */
export async function viewableActions(
  scope: ViewScope,
  launcher: Pick<ServerLauncher, 'describeAction'>,
  actions: readonly ActionSummary[],
): Promise<ActionSummary[]> {
  const kept: ActionSummary[] = [];
  for (const summary of actions) {
    if (await scope.action(summary.name, actionTags(launcher, summary.name))) kept.push(summary);
  }
  return kept;
}

/** The inventory preview restricted to the nodes the subject may view. */
export async function viewableNodes(
  scope: ViewScope,
  preview: { nodes: NodeSummary[]; matched: string[] },
): Promise<{ nodes: NodeSummary[]; matched: string[] }> {
  // Matched names may be ad-hoc (not in the inventory): decided like inventory nodes.
  const names = new Set([...preview.nodes.map((node) => node.name), ...preview.matched]);
  const visible = await scope.nodes([...names]);
  return {
    nodes: preview.nodes.filter((node) => visible.has(node.name)),
    matched: preview.matched.filter((name) => visible.has(name)),
  };
}

/** The shape of an audit record these checks read. */
interface AuditFacts {
  action?: string | null;
  node?: string | null;
  nodes?: readonly string[];
}

/**
 * The audit records the subject may view: the record's action (when it names one) and each of
 * its nodes must be viewable. Records about no action and no node (token and policy events) stay.
 */
export async function viewableAuditRecords<T extends AuditFacts>(
  scope: ViewScope,
  launcher: Pick<ServerLauncher, 'describeAction'>,
  records: readonly T[],
): Promise<T[]> {
  const named = new Set<string>();
  for (const record of records) for (const node of nodesOf(record)) named.add(node);
  const visible = await scope.nodes([...named]);
  const kept: T[] = [];
  for (const record of records) {
    const action = record.action;
    if (typeof action === 'string' && action !== '' && action !== '-') {
      if (!(await scope.action(action, actionTags(launcher, action)))) continue;
    }
    if (nodesOf(record).every((node) => visible.has(node))) kept.push(record);
  }
  return kept;
}

function nodesOf(record: AuditFacts): string[] {
  return [
    ...(typeof record.node === 'string' && record.node !== '' ? [record.node] : []),
    ...(record.nodes ?? []),
  ];
}
