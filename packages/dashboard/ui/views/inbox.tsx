/**
 * Approvals inbox and alerts view. They appear when the server has those APIs (the RBAC and
 * alerts work): runs waiting in `awaiting_approval` with approve / reject and a comment
 * (`POST /v1/runs/{id}/approve|reject`), and the alerts that arrived with what they caused.
 */
import { useEffect, useState } from 'preact/hooks';
import { type ApiError, api } from '../api.js';
import { can, type SessionInfo } from '../can.js';
import { ErrorBox, formatTime, JsonTree, StatusBadge } from '../components.js';
import { href } from '../router.js';
import type { RunListEntry } from './types.js';

/** `GET /v1/runs/{id}/approval`: what an approval applies to, and the votes so far. */
interface ApprovalState {
  state: string;
  requester: string;
  quorum: number;
  approvals: number;
  reason: string;
  binding_sha256: string;
  binding: { action: string; plugin_sha256: string; nodes: string[]; params_sha256: string };
  expires_at: string;
  votes: Array<{ approver: string; decision: string; comment: string; created_at: string }>;
}

export function ApprovalsView({ session }: { session: SessionInfo }) {
  const [runs, setRuns] = useState<RunListEntry[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const load = () =>
    api<{ runs: RunListEntry[] }>('/v1/runs?status=awaiting_approval&limit=100')
      .then((page) => setRuns(page.runs))
      .catch((caught: ApiError) => setError(caught));
  useEffect(() => {
    void load();
  }, []);
  return (
    <>
      <h1>Approvals</h1>
      <ErrorBox error={error} />
      {runs === null ? null : runs.length === 0 ? <p>Nothing waits for approval.</p> : null}
      <ul class="cards">
        {(runs ?? []).map((run) => (
          <ApprovalCard key={run.id} run={run} session={session} onDecided={load} />
        ))}
      </ul>
    </>
  );
}

function ApprovalCard({
  run,
  session,
  onDecided,
}: {
  run: RunListEntry;
  session: SessionInfo;
  onDecided: () => Promise<void>;
}) {
  const [approval, setApproval] = useState<ApprovalState | null>(null);
  const [comment, setComment] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => {
    api<ApprovalState>(`/v1/runs/${encodeURIComponent(run.id)}/approval`)
      .then(setApproval)
      .catch((caught: ApiError) => setError(caught));
  }, [run.id]);
  const decide = async (verdict: 'approve' | 'reject') => {
    if (approval === null) return;
    try {
      // The vote names the binding shown here: if the request changed since, the server refuses
      // (APPROVAL_MISMATCH) instead of counting it for something the approver did not see.
      await api(`/v1/runs/${encodeURIComponent(run.id)}/${verdict}`, {
        json: { comment, binding_sha256: approval.binding_sha256 },
      });
      await onDecided();
    } catch (caught) {
      setError(caught as ApiError);
    }
  };
  const own = run.principal === session.principal;
  return (
    <li class="card" data-run={run.id}>
      <div class="card-head">
        <h2>
          <a href={href(['runs', run.id])}>{run.action}</a>
        </h2>
        <StatusBadge status={run.status} />
      </div>
      <p>
        {run.principal} asks to run it on {run.nodes.join(', ')} ({formatTime(run.created_at)}).
      </p>
      <ErrorBox error={error} />
      {approval === null ? null : (
        <>
          <p>
            {approval.reason} · {approval.approvals} of {approval.quorum} approval
            {approval.quorum === 1 ? '' : 's'} · expires {formatTime(approval.expires_at)}
          </p>
          {approval.votes.length === 0 ? null : (
            <ul class="votes" aria-label="Votes">
              {approval.votes.map((vote) => (
                <li key={`${vote.approver}-${vote.created_at}`}>
                  {vote.approver} {vote.decision === 'approve' ? 'approved' : 'rejected'}
                  {vote.comment === '' ? '' : `: ${vote.comment}`}
                </li>
              ))}
            </ul>
          )}
          <JsonTree value={approval.binding} label="what an approval applies to" />
        </>
      )}
      {own ? (
        <p class="hint">This is your own request: another approver must decide it (four eyes).</p>
      ) : can(session, 'approve', run.action) && approval !== null ? (
        <>
          <div class="field">
            <label for={`comment-${run.id}`}>Comment</label>
            <textarea
              id={`comment-${run.id}`}
              rows={2}
              value={comment}
              onInput={(event) => setComment((event.target as HTMLTextAreaElement).value)}
            />
          </div>
          <div class="form-actions">
            <button type="button" class="primary" onClick={() => void decide('approve')}>
              Approve
            </button>
            <button type="button" class="danger" onClick={() => void decide('reject')}>
              Reject
            </button>
          </div>
        </>
      ) : null}
    </li>
  );
}

/** `GET /v1/alerts`: an alert as it arrived and what became of it. */
interface Alert {
  id: string;
  received_at: string;
  receiver: string;
  kind: string;
  status: string;
  alertname: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  rule: string | null;
  action: string | null;
  node: string | null;
  outcome: string;
  reason: string | null;
  error: { code?: string; message?: string; hint?: string } | null;
  run_id: string | null;
  held_until: string | null;
  released_by: string | null;
}

/** An alert's outcome as a sentence: what ran, or why nothing did. */
const OUTCOME_TEXT: Record<string, string> = {
  received: 'received, not decided yet',
  ran: 'ran',
  deduplicated: 'suppressed: a duplicate of an alert already handled',
  throttled: 'suppressed: throttled by its rule',
  pending: 'pending: its rule waits before running',
  held: 'held: the storm breaker stopped automatic runs',
  released: 'released by a person and ran',
  expired: 'suppressed: held until it expired',
  refused: 'refused',
  no_rule: 'suppressed: no rule matched',
  resolved: 'resolved before anything ran',
  cancelled: 'cancelled: resolved while its run waited',
};

const OUTCOME_SYMBOL: Record<string, string> = {
  ran: '✔',
  released: '✔',
  refused: '✖',
  held: '∥',
  pending: '◷',
  received: '◷',
};

function AlertCard({ alert }: { alert: Alert }) {
  const labels = Object.entries(alert.labels ?? {});
  return (
    <li class="card" data-alert={alert.id} data-outcome={alert.outcome}>
      <div class="card-head">
        <h2>{alert.alertname === '' ? alert.id : alert.alertname}</h2>
        <span class={`badge outcome-${alert.outcome}`} data-status={alert.outcome}>
          <span aria-hidden="true">{OUTCOME_SYMBOL[alert.outcome] ?? '⊘'}</span>{' '}
          {alert.outcome.replace('_', ' ')}
        </span>
      </div>
      <p class="muted">
        {alert.status} · from {alert.receiver} ({alert.kind}) · {formatTime(alert.received_at)}
      </p>
      <dl class="requirements alert-facts">
        <dt>Rule</dt>
        <dd data-field="rule">{alert.rule ?? 'none matched'}</dd>
        {alert.action === null ? null : (
          <>
            <dt>Action</dt>
            <dd data-field="action">
              {alert.action}
              {alert.node === null ? '' : ` on ${alert.node}`}
            </dd>
          </>
        )}
        <dt>Outcome</dt>
        <dd data-field="outcome">
          {OUTCOME_TEXT[alert.outcome] ?? alert.outcome}
          {alert.run_id === null ? null : (
            <>
              {' — '}
              <a href={href(['runs', alert.run_id])}>run {alert.run_id.slice(0, 8)}</a>
            </>
          )}
          {alert.reason === null || alert.reason === '' ? null : (
            <div data-field="reason">{alert.reason}</div>
          )}
          {alert.released_by === null ? null : <div>released by {alert.released_by}</div>}
        </dd>
      </dl>
      {alert.error === null ? null : (
        <ErrorBox
          error={{
            code: String(alert.error.code ?? 'ERROR'),
            message: String(alert.error.message ?? ''),
            ...(typeof alert.error.hint === 'string' ? { hint: alert.error.hint } : {}),
          }}
        />
      )}
      {labels.length === 0 ? null : (
        <details>
          <summary>Labels and annotations</summary>
          <table class="kv">
            <caption class="visually-hidden">Labels of {alert.alertname}</caption>
            <tbody>
              {labels.map(([key, value]) => (
                <tr key={`l-${key}`}>
                  <th scope="row">{key}</th>
                  <td>{value}</td>
                </tr>
              ))}
              {Object.entries(alert.annotations ?? {}).map(([key, value]) => (
                <tr key={`a-${key}`}>
                  <th scope="row">{key} (annotation)</th>
                  <td>{value}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
    </li>
  );
}

export function AlertsView() {
  const [alerts, setAlerts] = useState<Alert[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => {
    api<{ alerts: Alert[] }>('/v1/alerts?limit=100')
      .then((answer) => setAlerts(answer.alerts ?? []))
      .catch((caught: ApiError) => setError(caught));
  }, []);
  return (
    <>
      <h1>Alerts</h1>
      <ErrorBox error={error} />
      {alerts === null ? null : alerts.length === 0 ? <p>No alert has arrived.</p> : null}
      <ul class="cards">
        {(alerts ?? []).map((alert) => (
          <AlertCard key={alert.id} alert={alert} />
        ))}
      </ul>
    </>
  );
}
