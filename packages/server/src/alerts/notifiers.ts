/**
 * Notifiers: after an alert is decided, each configured notifier whose `outcomes` include the
 * outcome receives one POST — a Slack-compatible `{ "text": ... }` message, or the generic
 * `rune-alert-outcome/v1` JSON document — with a link to the run — and an `Idempotency-Key`
 * header. Decision outcomes are best effort (5 s timeout, no retry) and never delay a decision;
 * `run_ended` is durable and retried (run-end-notices.ts).
 */
import { RuneError } from '@rune/protocol';
import { sha256Hex } from '@rune/transport';
import type { StoredAlert } from './alert-store.js';
import type { ResolvedNotifier } from './rules.js';

const TIMEOUT_MS = 5000;

/** The generic notifier's document. */
export function outcomeDocument(alert: StoredAlert, publicUrl: string | undefined) {
  const base = publicUrl ?? '';
  return {
    schema_version: 'rune-alert-outcome/v1',
    alert_id: alert.id,
    alert_url: `${base}/v1/alerts/${alert.id}`,
    receiver: alert.receiver,
    status: alert.status,
    alertname: alert.alertname,
    fingerprint: alert.fingerprint,
    rule: alert.rule,
    action: alert.action,
    node: alert.node,
    outcome: alert.outcome,
    reason: alert.reason,
    run_id: alert.run_id,
    run_url: alert.run_id === null ? null : `${base}/v1/runs/${alert.run_id}`,
    decided_at: alert.decided_at,
  };
}

/** Slack mrkdwn with everything that comes from an alert escaped (no mentions, no links). */
const escapeSlack = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Posts one outcome. Throws on a network error or a non-2xx answer. */
export async function postNotification(
  notifier: ResolvedNotifier,
  alert: StoredAlert,
  publicUrl: string | undefined,
  idempotencyKey?: string,
): Promise<void> {
  const document = outcomeDocument(alert, publicUrl);
  const body =
    notifier.kind === 'webhook'
      ? document
      : {
          text: `RUNE: alert ${escapeSlack(alert.alertname || alert.fingerprint)}${alert.node === null ? '' : ` on ${escapeSlack(alert.node)}`} -> *${alert.outcome}*${alert.action === null ? '' : ` (${escapeSlack(alert.action)})`}${alert.reason === null ? '' : `: ${escapeSlack(alert.reason.slice(0, 300))}`}${document.run_url === null ? '' : ` <${document.run_url}|run ${alert.run_id}>`}`,
        };
  let response: Response;
  try {
    response = await fetch(notifier.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        // The same notification posted again (a retry) carries the same key.
        'idempotency-key':
          idempotencyKey ?? `rune-alert-${sha256Hex(`${alert.id}\n${alert.outcome}`).slice(0, 40)}`,
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
      redirect: 'error',
    });
  } catch (error) {
    throw new RuneError(
      'CONNECTION_REFUSED',
      `could not post to the notifier (${(error as Error).name})`,
      {
        cause: error,
      },
    );
  }
  await response.arrayBuffer().catch(() => undefined);
  if (!response.ok) {
    throw new RuneError('CONNECTION_REFUSED', `the notifier answered HTTP ${response.status}`);
  }
}
