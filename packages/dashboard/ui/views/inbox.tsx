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

export function ApprovalsView({ session }: { session: SessionInfo }) {
  const [runs, setRuns] = useState<RunListEntry[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [comments, setComments] = useState<Record<string, string>>({});
  const load = () =>
    api<{ runs: RunListEntry[] }>('/v1/runs?status=awaiting_approval&limit=100')
      .then((page) => setRuns(page.runs))
      .catch((caught: ApiError) => setError(caught));
  useEffect(() => {
    void load();
  }, []);
  const decide = async (id: string, verdict: 'approve' | 'reject') => {
    try {
      await api(`/v1/runs/${encodeURIComponent(id)}/${verdict}`, {
        json: { comment: comments[id] ?? '' },
      });
      await load();
    } catch (caught) {
      setError(caught as ApiError);
    }
  };
  return (
    <>
      <h1>Approvals</h1>
      <ErrorBox error={error} />
      {runs === null ? null : runs.length === 0 ? <p>Nothing waits for approval.</p> : null}
      <ul class="cards">
        {(runs ?? []).map((run) => (
          <li key={run.id} class="card">
            <div class="card-head">
              <h2>
                <a href={href(['runs', run.id])}>{run.action}</a>
              </h2>
              <StatusBadge status={run.status} />
            </div>
            <p>
              {run.principal} asks to run it on {run.nodes.join(', ')} ({formatTime(run.created_at)}
              ).
            </p>
            {run.principal === session.principal ? (
              <p class="hint">
                This is your own request: another approver must decide it (four eyes).
              </p>
            ) : can(session, 'approve', run.action) ? (
              <>
                <label for={`comment-${run.id}`}>Comment</label>
                <textarea
                  id={`comment-${run.id}`}
                  rows={2}
                  value={comments[run.id] ?? ''}
                  onInput={(event) =>
                    setComments({
                      ...comments,
                      [run.id]: (event.target as HTMLTextAreaElement).value,
                    })
                  }
                />
                <div class="form-actions">
                  <button
                    type="button"
                    class="primary"
                    onClick={() => void decide(run.id, 'approve')}
                  >
                    Approve
                  </button>
                  <button
                    type="button"
                    class="danger"
                    onClick={() => void decide(run.id, 'reject')}
                  >
                    Reject
                  </button>
                </div>
              </>
            ) : null}
          </li>
        ))}
      </ul>
    </>
  );
}

type Alert = Record<string, unknown>;
const text = (value: unknown): string =>
  value === null || value === undefined
    ? ''
    : typeof value === 'string'
      ? value
      : JSON.stringify(value);

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
        {(alerts ?? []).map((alert, index) => (
          <li key={text(alert.id ?? index)} class="card">
            <div class="card-head">
              <h2>{text(alert.name ?? alert.alertname ?? alert.id)}</h2>
              {alert.status === undefined ? null : <StatusBadge status={text(alert.status)} />}
            </div>
            <p>
              {formatTime(text(alert.received_at ?? alert.created_at))} · rule{' '}
              {text(alert.rule ?? '—')} ·{' '}
              {typeof alert.run_id === 'string' ? (
                <a href={href(['runs', alert.run_id])}>run</a>
              ) : (
                text(alert.reason ?? alert.outcome ?? '')
              )}
            </p>
            <JsonTree value={alert} label="details" />
          </li>
        ))}
      </ul>
    </>
  );
}
