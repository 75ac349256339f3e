/**
 * Shared pieces. Everything that comes from a plugin, a node or an alert is rendered as text
 * (Preact escapes it; nothing here uses innerHTML), and a status is always a word and a symbol,
 * never a colour alone.
 */
import type { ComponentChildren } from 'preact';
import type { ApiError, EpsError } from './api.js';
import { hintOf } from './eps.js';

/**
 * A symbol per status, each in DejaVu Sans (the fonts of a Debian host without internet, where a
 * missing glyph shows as an empty box): a pause sign for waiting on people, not a raised hand.
 */
const STATUS_SYMBOL: Record<string, string> = {
  queued: '◷',
  pending: '◷',
  awaiting_approval: '∥',
  running: '▶',
  succeeded: '✔',
  success: '✔',
  partial: '◐',
  failed: '✖',
  failure: '✖',
  skipped: '⤼',
  cancelled: '⊘',
  interrupted: '⚡',
};

/** A status as symbol + word (+ colour for those who see it). */
export function StatusBadge({ status }: { status: string }) {
  return (
    <span class={`badge status-${status}`} data-status={status}>
      <span aria-hidden="true">{STATUS_SYMBOL[status] ?? '•'}</span> {status.replace('_', ' ')}
    </span>
  );
}

/** An EPS code, its message and its hint (the error's own, else the EPS catalog's). */
export function EpsText({ code, message, hint }: { code: string; message: string; hint?: string }) {
  const shown = hintOf(code, hint);
  return (
    <>
      <strong class="eps-code">{code}</strong>: {message}
      {shown === undefined ? null : (
        <div class="hint">
          <span class="visually-hidden">Hint: </span>
          {shown}
        </div>
      )}
    </>
  );
}

/** An EPS error with its code and hint. */
export function ErrorBox({ error }: { error: ApiError | EpsError | Error | null | undefined }) {
  if (error === null || error === undefined) return null;
  const eps: EpsError =
    'eps' in error
      ? (error as ApiError).eps
      : 'code' in error
        ? (error as EpsError)
        : { code: 'ERROR', message: error.message };
  return (
    <div class="error" role="alert">
      <EpsText
        code={eps.code}
        message={eps.message}
        {...(eps.hint === undefined ? {} : { hint: eps.hint })}
      />
    </div>
  );
}

const isScalar = (value: unknown): boolean =>
  value === null || ['string', 'number', 'boolean'].includes(typeof value);

/** A JSON value, collapsible; strings are text. */
export function JsonTree({
  value,
  label,
  open = false,
}: {
  value: unknown;
  label?: string;
  open?: boolean;
}) {
  if (isScalar(value)) {
    return (
      <span class="json-scalar">
        {label === undefined ? null : <span class="json-key">{label}: </span>}
        {typeof value === 'string' ? value : JSON.stringify(value)}
      </span>
    );
  }
  const entries: Array<[string, unknown]> = Array.isArray(value)
    ? value.map((item, index) => [String(index), item])
    : Object.entries(value as Record<string, unknown>);
  return (
    <details class="json" open={open}>
      <summary>
        {label === undefined ? null : <span class="json-key">{label}</span>}{' '}
        {Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`}
      </summary>
      <ul>
        {entries.map(([key, item]) => (
          <li key={key}>
            <JsonTree value={item} label={key} />
          </li>
        ))}
      </ul>
    </details>
  );
}

/** `output_data`: a table for a flat object, a table of rows for an array of flat objects, else a tree. */
export function OutputView({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <p class="muted">No output data.</p>;
  if (typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    const flat = entries.filter(([, item]) => isScalar(item));
    const nested = entries.filter(([, item]) => !isScalar(item));
    return (
      <div>
        {flat.length === 0 ? null : (
          <table class="kv">
            <tbody>
              {flat.map(([key, item]) => (
                <tr key={key}>
                  <th scope="row">{key}</th>
                  <td>{typeof item === 'string' ? item : JSON.stringify(item)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {nested.map(([key, item]) =>
          Array.isArray(item) &&
          item.length > 0 &&
          item.every(
            (row) =>
              row !== null &&
              typeof row === 'object' &&
              !Array.isArray(row) &&
              Object.values(row).every(isScalar),
          ) ? (
            <RowsTable key={key} label={key} rows={item as Array<Record<string, unknown>>} />
          ) : (
            <JsonTree key={key} value={item} label={key} />
          ),
        )}
      </div>
    );
  }
  return <JsonTree value={value} open />;
}

function RowsTable({ label, rows }: { label: string; rows: Array<Record<string, unknown>> }) {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  return (
    <div class="table-wrap">
      <table class="rows">
        <caption>{label}</caption>
        <thead>
          <tr>
            {columns.map((column) => (
              <th key={column} scope="col">
                {column}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, index) => (
            <tr key={String(index)}>
              {columns.map((column) => (
                <td key={column}>
                  {row[column] === undefined
                    ? ''
                    : typeof row[column] === 'string'
                      ? (row[column] as string)
                      : JSON.stringify(row[column])}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** A titled section. */
export function Panel({
  title,
  children,
  actions,
}: {
  title: string;
  children: ComponentChildren;
  actions?: ComponentChildren;
}) {
  return (
    <section class="panel" aria-label={title}>
      <div class="panel-head">
        <h2>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

/** Milliseconds as `1.2 s` / `340 ms`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

/** An ISO time in the browser's locale. */
export function formatTime(iso: string | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}
