/**
 * Four-eyes approvals: the store side (approval requests and votes, through Kysely's query
 * builder on `store.db`), the binding of an approval to the exact request, and the webhook.
 *
 * The binding is sha256 over the canonical JSON of the action, the plugin's sha256, the resolved
 * node names and the sha256 of the effective parameters (sensitive values redacted: they are never
 * hashed into the store, where a short secret could be guessed back from its hash). Before an
 * approved run starts, the stored request is planned again and its binding compared: a changed
 * plugin, a different node set (the inventory moved) or other parameters invalidate the approval.
 */
import { canonicalJson, type ExecutionPlan } from '@rune/core';
import { sha256Hex } from '@rune/transport';
import type { Kysely } from 'kysely';
import type { ApprovalRequestsTable, ApprovalVotesTable, StoreDatabase } from '../store/schema.js';

/** What an approval binds. */
export interface ApprovalBinding {
  action: string;
  plugin_sha256: string;
  nodes: string[];
  params_sha256: string;
}

// The audit chain's canonical JSON: the same bytes for the same value, whatever the key order.
const digest = (value: unknown): string => sha256Hex(canonicalJson(value));

/** The binding of a (redacted) plan and its digest. */
export function bindingOf(redactedPlan: ExecutionPlan): {
  binding: ApprovalBinding;
  sha256: string;
} {
  const binding: ApprovalBinding = {
    action: redactedPlan.action,
    plugin_sha256: redactedPlan.plugin.sha256,
    nodes: redactedPlan.nodes.map((node) => node.target.name),
    params_sha256: digest(redactedPlan.parameters),
  };
  return { binding, sha256: digest(binding) };
}

/** An approval request with its votes. */
export interface ApprovalState {
  request: ApprovalRequestsTable;
  votes: ApprovalVotesTable[];
}

/** Writes the approval request of a held run. */
export async function insertApprovalRequest(
  db: Kysely<StoreDatabase>,
  row: ApprovalRequestsTable,
): Promise<void> {
  await db.insertInto('approval_requests').values(row).execute();
}

/** The approval request of a run and its votes, or undefined. */
export async function getApproval(
  db: Kysely<StoreDatabase>,
  runId: string,
): Promise<ApprovalState | undefined> {
  const request = await db
    .selectFrom('approval_requests')
    .selectAll()
    .where('run_id', '=', runId)
    .executeTakeFirst();
  if (request === undefined) return undefined;
  const votes = await db
    .selectFrom('approval_votes')
    .selectAll()
    .where('run_id', '=', runId)
    .orderBy('created_at')
    .execute();
  return { request, votes };
}

/** Records a vote; false when this approver already voted on the run. */
export async function insertVote(
  db: Kysely<StoreDatabase>,
  vote: ApprovalVotesTable,
): Promise<boolean> {
  const existing = await db
    .selectFrom('approval_votes')
    .select('approver')
    .where('run_id', '=', vote.run_id)
    .where('approver', '=', vote.approver)
    .executeTakeFirst();
  if (existing !== undefined) return false;
  await db.insertInto('approval_votes').values(vote).execute();
  return true;
}

/**
 * Moves a pending request to `state`; false when it was no longer pending (another process or
 * request decided first), so that a run is released or ended once only.
 */
export async function settleApproval(
  db: Kysely<StoreDatabase>,
  runId: string,
  state: 'approved' | 'rejected' | 'expired' | 'invalidated' | 'cancelled',
  at: string,
): Promise<boolean> {
  const result = await db
    .updateTable('approval_requests')
    .set({ state, decided_at: at })
    .where('run_id', '=', runId)
    .where('state', '=', 'pending')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Pending requests whose time ran out. */
export async function expiredApprovals(db: Kysely<StoreDatabase>, now: string): Promise<string[]> {
  const rows = await db
    .selectFrom('approval_requests')
    .select('run_id')
    .where('state', '=', 'pending')
    .where('expires_at', '<=', now)
    .execute();
  return rows.map((row) => row.run_id);
}

/** Marks a held run queued (it starts once its nodes are free). */
export async function markRunQueued(db: Kysely<StoreDatabase>, runId: string): Promise<void> {
  await db
    .updateTable('runs')
    .set({ status: 'queued' })
    .where('id', '=', runId)
    .where('status', '=', 'awaiting_approval')
    .execute();
}

/** What the webhook says. */
export interface PendingApprovalNotice {
  runId: string;
  action: string;
  nodes: readonly string[];
  requester: string;
  quorum: number;
  reason: string;
  expiresAt: string;
  link: string;
}

/**
 * Posts a Slack-compatible message (`text` plus `blocks`) about a pending approval. Failures are
 * reported to `warn`, never to the requester: the run waits either way.
 */
export async function notifyWebhook(
  url: string,
  notice: PendingApprovalNotice,
  warn: (line: string) => void,
): Promise<void> {
  const nodes = `${notice.nodes.slice(0, 10).join(', ')}${notice.nodes.length > 10 ? ` … (${notice.nodes.length})` : ''}`;
  const text = `RUNE: ${notice.requester} asks to run ${notice.action} on ${nodes}; ${notice.quorum} approval(s) needed by ${notice.expiresAt} (${notice.reason}). ${notice.link}`;
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        text,
        blocks: [
          { type: 'section', text: { type: 'mrkdwn', text } },
          {
            type: 'actions',
            elements: [
              { type: 'button', text: { type: 'plain_text', text: 'Open run' }, url: notice.link },
            ],
          },
        ],
        rune: {
          run_id: notice.runId,
          action: notice.action,
          nodes: notice.nodes,
          requester: notice.requester,
          quorum: notice.quorum,
          expires_at: notice.expiresAt,
          link: notice.link,
        },
      }),
      signal: AbortSignal.timeout(5_000),
      redirect: 'error',
    });
    if (!response.ok) warn(`approval webhook answered HTTP ${response.status}`);
    await response.body?.cancel().catch(() => undefined);
  } catch (error) {
    warn(`approval webhook failed: ${(error as Error).message}`);
  }
}
