/** Run history with its filters in the URL: the address of a filtered view can be shared. */
import { RUN_SOURCES, RUN_STATUSES } from '@rune/protocol/run-states';
import { useEffect, useState } from 'preact/hooks';
import { type ApiError, api, query } from '../api.js';
import { ErrorBox, formatTime, StatusBadge } from '../components.js';
import { href, navigate } from '../router.js';
import type { RunListEntry } from './types.js';

const FILTERS = ['action', 'node', 'status', 'principal', 'source', 'since', 'until'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

const toIso = (local: string): string | undefined =>
  local === '' ? undefined : new Date(local).toISOString();
const toLocal = (iso: string | null): string => {
  if (iso === null || iso === '') return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return shifted.toISOString().slice(0, 16);
};

/**
 * The filter form. Keyed by the URL's filters, it is made anew for each URL, so its draft starts
 * from the URL at once; a draft reset in an effect would run after paint and could wipe what
 * someone typed in between.
 */
function FilterForm({ current }: { current: Filters }) {
  const [draft, setDraft] = useState<Filters>(current);
  const apply = (event: Event) => {
    event.preventDefault();
    navigate(
      ['history'],
      Object.fromEntries(FILTERS.map((name) => [name, draft[name].trim() || undefined])),
    );
  };
  const set = (name: keyof Filters) => (event: Event) =>
    setDraft({ ...draft, [name]: (event.target as HTMLInputElement).value });
  /** A datetime-local field holds local time; the draft (and the URL) hold its ISO time. */
  const setTime = (name: 'since' | 'until') => (event: Event) =>
    setDraft({ ...draft, [name]: toIso((event.target as HTMLInputElement).value) ?? '' });

  return (
    <form class="filters" onSubmit={apply} aria-label="Filter runs">
      <label>
        Action <input name="action" value={draft.action} onInput={set('action')} />
      </label>
      <label>
        Node <input name="node" value={draft.node} onInput={set('node')} />
      </label>
      <label>
        Status
        <select name="status" value={draft.status} onChange={set('status')}>
          <option value="">any</option>
          {RUN_STATUSES.map((status) => (
            <option key={status}>{status}</option>
          ))}
        </select>
      </label>
      <label>
        Principal{' '}
        <input
          name="principal"
          value={draft.principal}
          onInput={set('principal')}
          placeholder="token:name"
        />
      </label>
      <label>
        Source
        <select name="source" value={draft.source} onChange={set('source')}>
          <option value="">any</option>
          {RUN_SOURCES.map((source) => (
            <option key={source}>{source}</option>
          ))}
        </select>
      </label>
      <label>
        Since{' '}
        <input
          name="since"
          type="datetime-local"
          value={toLocal(draft.since)}
          onInput={setTime('since')}
        />
      </label>
      <label>
        Until{' '}
        <input
          name="until"
          type="datetime-local"
          value={toLocal(draft.until)}
          onInput={setTime('until')}
        />
      </label>
      <div class="form-actions">
        <button type="submit" class="primary">
          Filter
        </button>
        <a class="button" href={href(['history'])}>
          Clear
        </a>
      </div>
    </form>
  );
}

export function HistoryView({ query: search }: { query: URLSearchParams }) {
  const current = Object.fromEntries(FILTERS.map((key) => [key, search.get(key) ?? ''])) as Filters;
  const key = FILTERS.map((name) => current[name]).join('\u0000');
  const [runs, setRuns] = useState<RunListEntry[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  const load = (after: string | null) =>
    api<{ runs: RunListEntry[]; next_cursor: string | null }>(
      `/v1/runs${query({ ...current, limit: 50, cursor: after })}`,
    )
      .then((page) => {
        setRuns((previous) => (after === null ? page.runs : [...(previous ?? []), ...page.runs]));
        setCursor(page.next_cursor);
        setError(null);
      })
      .catch((caught: ApiError) => setError(caught));

  // The filters' text is the dependency: a new URL, a new listing.
  useEffect(() => {
    setRuns(null);
    void load(null);
  }, [key]);

  return (
    <>
      <h1>History</h1>
      <FilterForm key={key} current={current} />
      <ErrorBox error={error} />
      {runs === null ? (
        error === null ? (
          <p class="loading">Loading runs…</p>
        ) : null
      ) : runs.length === 0 ? (
        <p>No run matches.</p>
      ) : (
        <div class="table-wrap">
          <table class="rows history">
            <thead>
              <tr>
                <th scope="col">Submitted</th>
                <th scope="col">Action</th>
                <th scope="col">Status</th>
                <th scope="col">Nodes</th>
                <th scope="col">Principal</th>
                <th scope="col">Source</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((run) => (
                <tr key={run.id} data-run={run.id}>
                  <td>
                    <a href={href(['runs', run.id])}>{formatTime(run.created_at)}</a>
                  </td>
                  <td>
                    {run.action}
                    {run.dry_run ? <span class="badge">dry run</span> : null}
                  </td>
                  <td>
                    <StatusBadge status={run.status} />
                  </td>
                  <td>{run.nodes.join(', ')}</td>
                  <td>{run.principal}</td>
                  <td>{run.source}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {cursor === null ? null : (
        <button type="button" onClick={() => void load(cursor)}>
          Load more
        </button>
      )}
    </>
  );
}
