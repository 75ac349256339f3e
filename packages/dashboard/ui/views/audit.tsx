/** The audit trail with the verdict of its hash-chain (and signature) verification. */
import { useEffect, useState } from 'preact/hooks';
import { type ApiError, api, query } from '../api.js';
import { ErrorBox, formatDuration, formatTime } from '../components.js';
import { href } from '../router.js';

interface Verdict {
  ok: boolean;
  verified: number;
  total: number;
  signed: number;
  unsigned: number;
  key_id: string | null;
  broken_line: number | null;
  error: { code: string; message: string } | null;
}

type AuditRecord = Record<string, unknown>;
const text = (value: unknown): string =>
  value === null || value === undefined
    ? ''
    : typeof value === 'string'
      ? value
      : JSON.stringify(value);

/** A session record's Action cell: how and why (`via oidc`, `idle`), never a credential. */
function sessionText(record: AuditRecord): string {
  const metadata = (record.metadata ?? {}) as Record<string, unknown>;
  const parts = [`via ${text(metadata.method)}`];
  if (typeof metadata.reason === 'string') parts.push(metadata.reason.replace('_', ' '));
  return parts.join(', ');
}

export function AuditView({ query: search }: { query: URLSearchParams }) {
  const [verdict, setVerdict] = useState<Verdict | null>(null);
  const [records, setRecords] = useState<AuditRecord[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const filters = {
    action: search.get('action'),
    node: search.get('node'),
    run_id: search.get('run_id'),
    principal: search.get('principal'),
    limit: 200,
  };
  const key = JSON.stringify(filters);
  // The filters' text is the dependency: a new URL, a new listing.
  useEffect(() => {
    api<Verdict>('/v1/audit/verify')
      .then(setVerdict)
      .catch((caught: ApiError) => setError(caught));
    api<{ records: AuditRecord[] }>(`/v1/audit${query(filters)}`)
      .then((answer) => setRecords([...answer.records].reverse()))
      .catch((caught: ApiError) => setError(caught));
  }, [key]);
  return (
    <>
      <h1>Audit trail</h1>
      {verdict === null ? null : (
        <div class={`verdict ${verdict.ok ? 'ok' : 'broken'}`} role="status">
          <strong>
            <span aria-hidden="true">{verdict.ok ? '✔' : '✖'}</span>{' '}
            {verdict.ok ? 'Hash chain verified' : 'Hash chain BROKEN'}
          </strong>
          : {verdict.verified} of {verdict.total} records verified; {verdict.signed} signed,{' '}
          {verdict.unsigned} unsigned
          {verdict.key_id === null ? '' : `, key ${verdict.key_id}`}.
          {verdict.broken_line === null ? null : <div>First bad line: {verdict.broken_line}.</div>}
          {verdict.error === null ? null : <ErrorBox error={verdict.error} />}
        </div>
      )}
      <ErrorBox error={error} />
      {records === null ? null : (
        <div class="table-wrap">
          <table class="rows audit">
            <caption>
              Most recent first{search.toString() === '' ? '' : ` (filtered: ${search.toString()})`}
            </caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Time</th>
                <th scope="col">Event</th>
                <th scope="col">Operator</th>
                <th scope="col">Action</th>
                <th scope="col">Node</th>
                <th scope="col">Status</th>
                <th scope="col">Error</th>
                <th scope="col">Duration</th>
              </tr>
            </thead>
            <tbody>
              {records.map((record) => (
                <tr key={text(record.seq)}>
                  <td>{text(record.seq)}</td>
                  <td>{formatTime(text(record.timestamp))}</td>
                  <td>
                    {typeof record.run_id === 'string' ? (
                      <a href={href(['runs', record.run_id])}>{text(record.event)}</a>
                    ) : (
                      text(record.event)
                    )}
                  </td>
                  <td>{text(record.operator)}</td>
                  <td>{record.event === 'session' ? sessionText(record) : text(record.action)}</td>
                  <td>
                    {text(
                      record.node ??
                        (Array.isArray(record.nodes) ? (record.nodes as string[]).join(', ') : ''),
                    )}
                  </td>
                  <td>{text(record.status)}</td>
                  <td>{text(record.error_code)}</td>
                  <td>
                    {typeof record.duration_ms === 'number'
                      ? formatDuration(record.duration_ms)
                      : ''}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
