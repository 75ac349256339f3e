/** The action catalog: description, version, tags, a dangerous badge, requirements. */
import { useEffect, useState } from 'preact/hooks';
import { type ApiError, api } from '../api.js';
import { can, type SessionInfo } from '../can.js';
import { ErrorBox } from '../components.js';
import { href } from '../router.js';
import type { ActionEntry, Manifest } from './types.js';

/** A catalog card's facts. */
type CatalogEntry = { name: string; source: string; manifest: Manifest };

export function CatalogView({ session }: { session: SessionInfo }) {
  const [actions, setActions] = useState<CatalogEntry[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [filter, setFilter] = useState('');
  useEffect(() => {
    // One request for the whole catalog (one per action ran into the rate limit at ~100).
    api<{ actions: Array<ActionEntry & { manifest?: Manifest | null }> }>(
      '/v1/actions?include=manifest',
    )
      .then((list) =>
        Promise.all(
          list.actions.map(async (entry) =>
            entry.manifest === undefined
              ? // A server that predates include=manifest: ask for this one.
                api<CatalogEntry>(`/v1/actions/${encodeURIComponent(entry.name)}`)
              : entry.manifest === null
                ? null
                : { name: entry.name, source: entry.source, manifest: entry.manifest },
          ),
        ),
      )
      .then((entries) => entries.filter((entry): entry is CatalogEntry => entry !== null))
      .then(setActions)
      .catch((caught: ApiError) => setError(caught));
  }, []);
  const needle = filter.trim().toLowerCase();
  const shown = (actions ?? []).filter(
    (action) =>
      needle === '' ||
      action.name.includes(needle) ||
      action.manifest.description.toLowerCase().includes(needle) ||
      (action.manifest.tags ?? []).some((tag) => tag.includes(needle)),
  );
  return (
    <>
      <div class="page-head">
        <h1>Actions</h1>
        <label class="search">
          <span class="visually-hidden">Filter actions</span>
          <input
            type="search"
            placeholder="Filter by name, tag, text"
            value={filter}
            onInput={(event) => setFilter((event.target as HTMLInputElement).value)}
          />
        </label>
      </div>
      <ErrorBox error={error} />
      {actions === null && error === null ? <p class="loading">Loading actions…</p> : null}
      <ul class="cards">
        {shown.map(({ name, manifest }) => (
          <li key={name} class="card action-card" data-action={name}>
            <div class="card-head">
              <h2>
                <a href={href(['actions', name])}>{name}</a>
              </h2>
              <span class="version">v{manifest.version}</span>
              {manifest.dangerous ? (
                <span class="badge dangerous">
                  <span aria-hidden="true">⚠</span> dangerous
                </span>
              ) : null}
            </div>
            <p>{manifest.description}</p>
            <ul class="tags" aria-label="Tags">
              {(manifest.tags ?? []).map((tag) => (
                <li key={tag} class="tag">
                  {tag}
                </li>
              ))}
            </ul>
            <dl class="requirements">
              <dt>Privilege</dt>
              <dd>{manifest.requirements?.privilege ?? 'user'}</dd>
              {(manifest.requirements?.commands ?? []).length > 0 ? (
                <>
                  <dt>Needs</dt>
                  <dd>{(manifest.requirements?.commands ?? []).join(', ')}</dd>
                </>
              ) : null}
              <dt>Idempotent</dt>
              <dd>{manifest.idempotent ? 'yes' : 'no'}</dd>
            </dl>
            <div class="card-actions">
              {can(session, 'run', name) ? (
                <a class="button primary" href={href(['actions', name])}>
                  Run {name}
                </a>
              ) : (
                <a class="button" href={href(['actions', name])}>
                  Details
                </a>
              )}
            </div>
          </li>
        ))}
      </ul>
    </>
  );
}
