/**
 * A run, live: per-node status as events arrive, durations, EPS codes with their hints, the
 * summary, each node's output (tables or collapsible JSON), the stderr tail and artifacts. The
 * state is rebuilt from the run document and the replayed event stream, so a reload or a dropped
 * connection loses nothing.
 */
import { useEffect, useState } from 'preact/hooks';
import { type ApiError, api } from '../api.js';
import { can, type SessionInfo } from '../can.js';
import {
  EpsText,
  ErrorBox,
  formatDuration,
  formatTime,
  OutputView,
  Panel,
  StatusBadge,
} from '../components.js';
import { href } from '../router.js';
import { followRunEvents, type RunEvent } from '../sse.js';
import type { NodeResult, RunDocument } from './types.js';

interface NodeView {
  name: string;
  state: string;
  startedAt?: string;
  result?: NodeResult;
}

const ENDED = new Set(['succeeded', 'failed', 'partial', 'cancelled', 'interrupted']);

function nodesOf(run: RunDocument): Map<string, NodeView> {
  const nodes = new Map<string, NodeView>();
  for (const planned of run.plan?.nodes ?? [])
    nodes.set(planned.target.name, { name: planned.target.name, state: 'queued' });
  for (const result of run.nodes)
    nodes.set(result.node, {
      name: result.node,
      state: result.status,
      result,
      ...(result.started_at === undefined ? {} : { startedAt: result.started_at }),
    });
  return nodes;
}

export function RunView({ id, session }: { id: string; session: SessionInfo }) {
  const [run, setRun] = useState<RunDocument | null>(null);
  const [nodes, setNodes] = useState<Map<string, NodeView>>(new Map());
  const [status, setStatus] = useState<string>('queued');
  const [connection, setConnection] = useState<'live' | 'reconnecting' | 'ended'>('live');
  const [error, setError] = useState<ApiError | null>(null);
  const [cancelling, setCancelling] = useState(false);
  const [eventCount, setEventCount] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    setRun(null);
    setError(null);
    setEventCount(0);
    const refresh = () =>
      api<RunDocument>(`/v1/runs/${encodeURIComponent(id)}`).then((document) => {
        setRun(document);
        setStatus(document.status);
        setNodes(nodesOf(document));
        return document;
      });
    refresh()
      .then(() =>
        followRunEvents(id, {
          signal: controller.signal,
          onState: setConnection,
          hasEnded: async () => ENDED.has((await refresh()).status),
          onEvent: (event: RunEvent) => {
            setEventCount((count) => count + 1);
            if (event.type === 'run-start') setStatus('running');
            if (event.type === 'node-start' && event.node !== undefined) {
              const name = event.node;
              setNodes((current) =>
                new Map(current).set(name, {
                  ...(current.get(name) ?? { name }),
                  name,
                  state: 'running',
                  startedAt: event.timestamp,
                }),
              );
            }
            if (event.type === 'node-end' && event.result !== undefined) {
              const result = event.result as unknown as NodeResult;
              setNodes((current) =>
                new Map(current).set(result.node, {
                  name: result.node,
                  state: result.status,
                  result,
                  ...(result.started_at === undefined ? {} : { startedAt: result.started_at }),
                }),
              );
            }
            if (event.type === 'run-end') void refresh();
          },
        }),
      )
      .then(() => {
        if (!controller.signal.aborted) void refresh();
      })
      .catch((caught: ApiError) => {
        if ((caught as Error).name !== 'AbortError') setError(caught);
      });
    return () => controller.abort();
  }, [id]);

  if (run === null)
    return error === null ? <p class="loading">Loading run…</p> : <ErrorBox error={error} />;
  const ended = ENDED.has(status);
  const cancel = async () => {
    setCancelling(true);
    try {
      await api(`/v1/runs/${encodeURIComponent(id)}/cancel`, { method: 'POST', json: {} });
    } catch (caught) {
      setError(caught as ApiError);
    } finally {
      setCancelling(false);
    }
  };
  const list = [...nodes.values()];
  return (
    <>
      <div class="page-head">
        <h1>
          {run.action} {run.dry_run ? <span class="badge">dry run</span> : null}
        </h1>
        <StatusBadge status={status} />
        {!ended && can(session, 'cancel', run.action) ? (
          <button type="button" class="danger" onClick={cancel} disabled={cancelling}>
            Cancel run
          </button>
        ) : null}
      </div>
      {status === 'awaiting_approval' ? (
        <p class="hint">
          Held for approval: it starts when approvers in the{' '}
          <a href={href(['approvals'])}>Approvals</a> inbox reach the quorum.
        </p>
      ) : null}
      <p class="connection" aria-live="polite" data-connection={connection}>
        {ended
          ? `Finished ${formatTime(run.finished_at)}.`
          : connection === 'reconnecting'
            ? 'Connection lost — reconnecting without losing events…'
            : 'Live.'}{' '}
        <span class="muted">{eventCount} events received.</span>
      </p>
      <dl class="run-meta">
        <dt>Run</dt>
        <dd>
          <code>{run.id}</code>
        </dd>
        <dt>Trace</dt>
        <dd>
          <code>{run.trace_id}</code>
        </dd>
        <dt>By</dt>
        <dd>
          {run.principal} ({run.source})
        </dd>
        <dt>Submitted</dt>
        <dd>{formatTime(run.created_at)}</dd>
      </dl>
      <ErrorBox error={error ?? run.error} />
      {run.summary === null ? null : (
        <p class="summary">
          {run.summary.total} node(s): {run.summary.succeeded} succeeded, {run.summary.partial}{' '}
          partial, {run.summary.failed} failed, {run.summary.skipped} skipped in{' '}
          {formatDuration(run.summary.duration_ms)}.
        </p>
      )}
      <Panel title="Nodes">
        <ul class="node-list">
          {list.map((node) => (
            <NodeRow key={node.name} runId={run.id} node={node} />
          ))}
        </ul>
      </Panel>
    </>
  );
}

function NodeRow({ runId, node }: { runId: string; node: NodeView }) {
  const result = node.result;
  const payload = result?.response?.payload;
  const artifacts = (result?.artifacts ?? []).filter((artifact) => artifact.status === 'fetched');
  return (
    <li class="node" data-node={node.name} data-state={node.state}>
      <div class="node-head">
        <strong class="node-name">{node.name}</strong>
        <StatusBadge status={node.state} />
        <span class="muted">
          {result === undefined
            ? node.startedAt === undefined
              ? ''
              : `started ${formatTime(node.startedAt)}`
            : formatDuration(result.duration_ms)}
        </span>
      </div>
      {payload?.summary === undefined ? null : <p class="node-summary">{payload.summary}</p>}
      {result?.error == null ? null : (
        <div class="error node-error">
          <EpsText
            code={result.error.code}
            message={result.error.message}
            {...(result.error.hint === undefined ? {} : { hint: result.error.hint })}
          />
        </div>
      )}
      {result === undefined ? null : (
        <details class="node-details">
          <summary>Output, stderr and artifacts</summary>
          <h3>Output</h3>
          <OutputView value={payload?.output_data} />
          <h3>stderr{result.stderr_truncated ? ' (tail, truncated)' : ''}</h3>
          {result.stderr_tail ? (
            <pre class="stderr">{result.stderr_tail}</pre>
          ) : (
            <p class="muted">Nothing on stderr.</p>
          )}
          {artifacts.length === 0 ? null : (
            <>
              <h3>Artifacts</h3>
              <ul>
                {artifacts.map((artifact) => {
                  const name = artifact.path.split('/').pop() ?? 'artifact';
                  return (
                    <li key={artifact.path}>
                      <a
                        href={`/v1/runs/${encodeURIComponent(runId)}/nodes/${encodeURIComponent(node.name)}/artifacts/${encodeURIComponent(name)}`}
                        download={name}
                      >
                        {name}
                      </a>{' '}
                      <span class="muted">{artifact.path}</span>
                    </li>
                  );
                })}
              </ul>
            </>
          )}
        </details>
      )}
    </li>
  );
}
