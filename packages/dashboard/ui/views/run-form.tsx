/**
 * Run an action: a form generated from the manifest's parameter JSON Schema, a node picker that
 * shows live which inventory nodes a selection matches, a dry-run preview of exactly what would run
 * where, and Run (with a confirmation for dangerous actions). Sensitive parameters are password
 * inputs whose values leave the page only in the run request and are cleared after it.
 */
import { Fragment, type VNode } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { type ApiError, api, query } from '../api.js';
import { can, type SessionInfo } from '../can.js';
import { ErrorBox, Panel } from '../components.js';
import { checkRunForm, type FieldProblem, parameterValue, typeOf } from '../form-check.js';
import { navigate } from '../router.js';
import type { ActionDetail, ParamSchema, RunDocument } from './types.js';

type Values = Record<string, string | boolean>;

interface InventoryNode {
  name: string;
  address: string | null;
  transport: string;
  tags: string[];
}

function initialValues(detail: ActionDetail): Values {
  const values: Values = {};
  for (const [name, schema] of Object.entries(detail.parameters_schema.properties ?? {})) {
    if (typeOf(schema) === 'boolean') values[name] = schema.default === true;
    else if (schema.sensitive) values[name] = '';
    else if (schema.default === undefined) values[name] = '';
    else
      values[name] =
        typeof schema.default === 'string' ? schema.default : JSON.stringify(schema.default);
  }
  return values;
}

/** The typed params object of the form (empty fields left out: the server fills defaults). */
function toParams(detail: ActionDetail, values: Values): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(detail.parameters_schema.properties ?? {})) {
    const value = values[name] ?? '';
    if (typeOf(schema) === 'boolean') {
      if (value !== (schema.default === true) || detail.parameters_schema.required?.includes(name))
        params[name] = value === true;
      continue;
    }
    const typed = parameterValue(schema, value);
    if (typed !== undefined) params[name] = typed;
  }
  return params;
}

function Field({
  name,
  schema,
  required,
  value,
  problem,
  onChange,
}: {
  name: string;
  schema: ParamSchema;
  required: boolean;
  value: string | boolean;
  problem: FieldProblem | undefined;
  /** The new value; `unreadable` when a number field holds text that is not a number. */
  onChange: (value: string | boolean, unreadable?: boolean) => void;
}) {
  const id = `param-${name}`;
  const help = schema.description === undefined ? undefined : `${id}-help`;
  const type = typeOf(schema);
  // No `pattern`, `minlength` or `maxlength` attributes: HTML anchors a pattern and counts UTF-16
  // units, JSON Schema does neither. form-check.ts checks with the protocol's code instead.
  const common = {
    id,
    name,
    required,
    ...invalidity(id, problem, help),
  };
  let input: VNode;
  if (schema.enum !== undefined) {
    input = (
      <select
        {...common}
        value={String(value)}
        onChange={(event) => onChange((event.target as HTMLSelectElement).value)}
      >
        {required || schema.default !== undefined ? null : <option value="">(not set)</option>}
        {schema.enum.map((option) => (
          <option key={String(option)} value={String(option)}>
            {String(option)}
          </option>
        ))}
      </select>
    );
  } else if (type === 'boolean') {
    input = (
      <input
        {...common}
        required={false}
        type="checkbox"
        checked={value === true}
        onChange={(event) => onChange((event.target as HTMLInputElement).checked)}
      />
    );
  } else if (type === 'integer' || type === 'number') {
    input = (
      <input
        {...common}
        type="number"
        inputMode={type === 'integer' ? 'numeric' : 'decimal'}
        step={type === 'integer' ? 1 : 'any'}
        min={schema.minimum}
        max={schema.maximum}
        value={String(value)}
        onInput={(event) => onNumberInput(event, onChange)}
      />
    );
  } else if (type === 'array' || type === 'object') {
    input = (
      <textarea
        {...common}
        rows={3}
        value={String(value)}
        placeholder={type === 'array' ? 'one item per line' : 'JSON'}
        onInput={(event) => onChange((event.target as HTMLTextAreaElement).value)}
      />
    );
  } else if (schema.sensitive) {
    // Never pre-filled and cleared after a run: the value leaves the page only in the request.
    input = (
      <input
        {...common}
        type="password"
        autocomplete="new-password"
        value={String(value)}
        onInput={(event) => onChange((event.target as HTMLInputElement).value)}
      />
    );
  } else {
    input = (
      <input
        {...common}
        type="text"
        autocomplete="off"
        spellcheck={false}
        value={String(value)}
        onInput={(event) => onChange((event.target as HTMLInputElement).value)}
      />
    );
  }
  const range =
    schema.minimum !== undefined || schema.maximum !== undefined
      ? ` (${schema.minimum ?? '…'}–${schema.maximum ?? '…'})`
      : '';
  return (
    <div class={`field field-${type}`}>
      <label for={id}>
        {name}
        {required ? <Required /> : null}
        {schema.sensitive ? <span class="badge sensitive">sensitive</span> : null}
      </label>
      {input}
      <FieldError id={`${id}-error`} problem={problem} />
      {help === undefined ? null : (
        <p id={help} class="muted">
          {schema.description}
          {range}
          {schema.default !== undefined && !schema.sensitive
            ? ` Default: ${JSON.stringify(schema.default)}.`
            : ''}
        </p>
      )}
    </div>
  );
}

/**
 * A number input's change. Text the browser cannot read as a number (`2e`, `-`) reads as an
 * empty value; it is passed on as unreadable so that the check names it instead of dropping it.
 */
function onNumberInput(event: Event, onChange: (value: string, unreadable: boolean) => void) {
  const target = event.target as HTMLInputElement;
  onChange(target.value, target.validity.badInput);
}

/** The `aria-*` attributes that tie an input to its problem (and its help, when it has one). */
function invalidity(id: string, problem: FieldProblem | undefined, help?: string) {
  const describedBy = [help, problem === undefined ? undefined : `${id}-error`]
    .filter(Boolean)
    .join(' ');
  return {
    'aria-describedby': describedBy === '' ? undefined : describedBy,
    'aria-invalid': problem === undefined ? undefined : ('true' as const),
  };
}

/** A field's problem, next to it and named by its `aria-describedby`. */
function FieldError({ id, problem }: { id: string; problem: FieldProblem | undefined }) {
  if (problem === undefined) return null;
  return (
    <p id={id} class="field-error" data-code={problem.code}>
      <span aria-hidden="true">✖ </span>
      {problem.message}
    </p>
  );
}

function Required() {
  return (
    <>
      <span aria-hidden="true"> *</span>
      <span class="visually-hidden"> (required)</span>
    </>
  );
}

/** The selection as one selector (commas), so that `!x` excludes from the rest as in the CLI. */
function splitTargets(text: string): string[] {
  const parts = text
    .split(/[\s,]+/)
    .map((part) => part.trim())
    .filter(Boolean);
  return parts.length === 0 ? [] : [parts.join(',')];
}

export function RunFormView({ action, session }: { action: string; session: SessionInfo }) {
  const [detail, setDetail] = useState<ActionDetail | null>(null);
  const [values, setValues] = useState<Values>({});
  const [targets, setTargets] = useState('');
  const [inventory, setInventory] = useState<InventoryNode[]>([]);
  const [matched, setMatched] = useState<string[] | null>(null);
  const [matchError, setMatchError] = useState<ApiError | null>(null);
  const [timeout, setTimeoutValue] = useState('');
  const [concurrency, setConcurrency] = useState('');
  /** Ids of number fields whose text is not a number (see {@link onNumberInput}). */
  const [unreadable, setUnreadable] = useState<ReadonlySet<string>>(new Set());
  const markUnreadable = (field: string, isUnreadable: boolean) =>
    setUnreadable((current) => {
      if (current.has(field) === isUnreadable) return current;
      const next = new Set(current);
      if (isUnreadable) next.add(field);
      else next.delete(field);
      return next;
    });
  const [error, setError] = useState<ApiError | Error | null>(null);
  const [preview, setPreview] = useState<RunDocument | null>(null);
  const [busy, setBusy] = useState(false);
  const [problems, setProblems] = useState<FieldProblem[]>([]);
  const dialog = useRef<HTMLDialogElement>(null);
  const form = useRef<HTMLFormElement>(null);

  useEffect(() => {
    setDetail(null);
    setPreview(null);
    api<ActionDetail>(`/v1/actions/${encodeURIComponent(action)}`)
      .then((answer) => {
        setDetail(answer);
        setValues(initialValues(answer));
      })
      .catch((caught: ApiError) => setError(caught));
    api<{ nodes: InventoryNode[] }>('/v1/nodes')
      .then((answer) => setInventory(answer.nodes))
      .catch(() => setInventory([]));
  }, [action]);

  useEffect(() => {
    const selectors = splitTargets(targets);
    if (selectors.length === 0) {
      setMatched(null);
      setMatchError(null);
      return undefined;
    }
    const controller = new AbortController();
    const timer = setTimeout(() => {
      const search = new URLSearchParams();
      for (const selector of selectors) search.append('selector', selector);
      api<{ matched: string[] }>(`/v1/nodes?${search.toString()}`, { signal: controller.signal })
        .then((answer) => {
          setMatched(answer.matched);
          setMatchError(null);
        })
        .catch((caught: ApiError) => {
          if ((caught as Error).name === 'AbortError') return;
          setMatched(null);
          setMatchError(caught);
        });
    }, 200);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [targets]);

  if (detail === null)
    return error === null ? <p class="loading">Loading {action}…</p> : <ErrorBox error={error} />;
  const { manifest } = detail;
  const properties = Object.entries(detail.parameters_schema.properties ?? {});
  const required = new Set(detail.parameters_schema.required ?? []);
  const mayRun = can(session, 'run', action);
  const mayDryRun = can(session, 'dry-run', action);

  const findProblems = () =>
    checkRunForm({
      properties,
      required,
      params: toParams(detail, values),
      targets: splitTargets(targets),
      timeout,
      concurrency,
      unreadable,
    });
  /** The form's problems (shown, the first focused); true when there are none. */
  const checked = (): boolean => {
    const found = findProblems();
    setProblems(found);
    // A problem in the closed Run options is shown: its section opens.
    for (const problem of found) {
      const details = document.getElementById(problem.field)?.closest('details');
      if (details) details.open = true;
    }
    if (found.length > 0) document.getElementById(found[0]?.field ?? '')?.focus();
    return found.length === 0;
  };
  // Once shown, the problems follow the edits: a fixed field loses its message at once.
  if (problems.length > 0) {
    const now = findProblems();
    if (JSON.stringify(now) !== JSON.stringify(problems)) setProblems(now);
  }
  const problemOf = (field: string) => problems.find((problem) => problem.field === field);

  const request = (dryRun: boolean) => {
    const options: Record<string, unknown> = {};
    if (dryRun) options.dry_run = true;
    if (!dryRun && manifest.dangerous) options.confirm = true;
    if (timeout.trim() !== '') options.timeout = timeout.trim();
    if (concurrency.trim() !== '') options.concurrency = Number(concurrency);
    return { action, targets: splitTargets(targets), params: toParams(detail, values), options };
  };

  const clearSensitive = () =>
    setValues((current) => {
      const next = { ...current };
      for (const [name, schema] of properties) if (schema.sensitive) next[name] = '';
      return next;
    });

  const dryRun = async () => {
    if (!checked()) return;
    setBusy(true);
    setError(null);
    setPreview(null);
    try {
      const accepted = await api<{ id: string }>('/v1/runs', { json: request(true) });
      setPreview(await api<RunDocument>(`/v1/runs/${accepted.id}${query({ wait: '30s' })}`));
    } catch (caught) {
      setError(caught as ApiError);
    } finally {
      setBusy(false);
    }
  };

  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      const accepted = await api<{ id: string }>('/v1/runs', { json: request(false) });
      clearSensitive();
      navigate(['runs', accepted.id]);
    } catch (caught) {
      setError(caught as ApiError);
    } finally {
      setBusy(false);
    }
  };

  const onSubmit = (event: Event) => {
    event.preventDefault();
    if (!mayRun || !checked()) return;
    if (manifest.dangerous) dialog.current?.showModal();
    else void run();
  };

  return (
    <>
      <div class="page-head">
        <h1>
          {manifest.name} <span class="version">v{manifest.version}</span>
        </h1>
        {manifest.dangerous ? (
          <span class="badge dangerous">
            <span aria-hidden="true">⚠</span> dangerous
          </span>
        ) : null}
      </div>
      <p>{manifest.description}</p>
      <form
        ref={form}
        onSubmit={onSubmit}
        noValidate
        class="run-form"
        aria-label={`Run ${manifest.name}`}
      >
        <Panel title="Targets">
          <div class="field">
            <label for="targets">
              Nodes <Required />
            </label>
            <input
              id="targets"
              required
              spellcheck={false}
              autocomplete="off"
              placeholder="web1, @web, tag:prod, db*, !db3"
              value={targets}
              onInput={(event) => setTargets((event.target as HTMLInputElement).value)}
              aria-invalid={problemOf('targets') === undefined ? undefined : 'true'}
              aria-describedby={`targets-help targets-matched${problemOf('targets') === undefined ? '' : ' targets-error'}`}
            />
            <FieldError id="targets-error" problem={problemOf('targets')} />
            <p id="targets-help" class="muted">
              Names, <code>@group</code>, <code>tag:x</code>, globs, <code>!x</code> to exclude,{' '}
              <code>user@host:port</code>; separated by commas or spaces.
            </p>
            <div id="targets-matched" aria-live="polite" class="matched">
              {matchError !== null ? <ErrorBox error={matchError} /> : null}
              {matched === null ? null : matched.length === 0 ? (
                <p>Matches no node.</p>
              ) : (
                <p>
                  Matches {matched.length} node{matched.length === 1 ? '' : 's'}:{' '}
                  {matched.map((name) => (
                    <span key={name} class="tag node-match">
                      {name}
                    </span>
                  ))}
                </p>
              )}
            </div>
          </div>
          {inventory.length === 0 ? null : (
            <details class="inventory">
              <summary>Inventory ({inventory.length})</summary>
              <ul class="chips">
                {inventory.map((node) => (
                  <li key={node.name}>
                    <button
                      type="button"
                      class="chip"
                      onClick={() =>
                        setTargets((current) =>
                          current.trim() === '' ? node.name : `${current.trim()}, ${node.name}`,
                        )
                      }
                    >
                      {node.name}
                      <span class="muted"> {node.tags.join(' ')}</span>
                    </button>
                  </li>
                ))}
              </ul>
            </details>
          )}
        </Panel>
        <Panel title="Parameters">
          {properties.length === 0 ? <p class="muted">This action takes no parameters.</p> : null}
          {properties.map(([name, schema]) => (
            <Field
              key={name}
              name={name}
              schema={schema}
              required={required.has(name)}
              value={values[name] ?? ''}
              problem={problemOf(`param-${name}`)}
              onChange={(value, isUnreadable) => {
                setValues((current) => ({ ...current, [name]: value }));
                markUnreadable(`param-${name}`, isUnreadable === true);
              }}
            />
          ))}
          <details class="options">
            <summary>Run options</summary>
            <div class="field">
              <label for="opt-timeout">Timeout per node</label>
              <input
                id="opt-timeout"
                spellcheck={false}
                autocomplete="off"
                placeholder={`${(manifest.timeout_ms ?? 0) / 1000}s`}
                value={timeout}
                {...invalidity('opt-timeout', problemOf('opt-timeout'))}
                onInput={(event) => setTimeoutValue((event.target as HTMLInputElement).value)}
              />
              <FieldError id="opt-timeout-error" problem={problemOf('opt-timeout')} />
            </div>
            <div class="field">
              <label for="opt-concurrency">Nodes at once</label>
              <input
                id="opt-concurrency"
                type="number"
                min={1}
                step={1}
                value={concurrency}
                {...invalidity('opt-concurrency', problemOf('opt-concurrency'))}
                onInput={(event) =>
                  onNumberInput(event, (value, isUnreadable) => {
                    setConcurrency(value);
                    markUnreadable('opt-concurrency', isUnreadable);
                  })
                }
              />
              <FieldError id="opt-concurrency-error" problem={problemOf('opt-concurrency')} />
            </div>
          </details>
        </Panel>
        <div class="form-actions">
          {mayDryRun ? (
            <button type="button" onClick={dryRun} disabled={busy}>
              Dry run
            </button>
          ) : null}
          {mayRun ? (
            <button type="submit" class="primary" disabled={busy}>
              Run
            </button>
          ) : (
            <p class="muted">Your role ({session.role}) may not run this action.</p>
          )}
        </div>
        {problems.length === 0 ? null : (
          <div class="error" role="alert" id="form-problems">
            {/* Each code the API answers for these values (a parameter's, the request's). */}
            {[...new Set(problems.map((problem) => problem.code))].map((code, index) => (
              <Fragment key={code}>
                {index === 0 ? null : ' and '}
                <strong class="eps-code">{code}</strong>
              </Fragment>
            ))}
            : the request would be refused — fix{' '}
            {problems.length === 1 ? 'this field' : `these ${problems.length} fields`}:
            <ul>
              {problems.map((problem) => (
                <li key={problem.field} data-code={problem.code}>
                  {problem.label}: {problem.message}
                </li>
              ))}
            </ul>
          </div>
        )}
        <ErrorBox error={error} />
      </form>
      {preview === null ? null : <PlanPreview run={preview} />}
      <dialog ref={dialog} aria-labelledby="confirm-title" class="confirm">
        <form method="dialog">
          <h2 id="confirm-title">Run a dangerous action?</h2>
          <p>
            <strong>{manifest.name}</strong> is marked dangerous. It will run on{' '}
            {matched === null
              ? 'the selected nodes'
              : `${matched.length} node(s): ${matched.join(', ')}`}
            .
          </p>
          <div class="form-actions">
            <button value="cancel" type="submit">
              Cancel
            </button>
            <button
              value="run"
              type="button"
              class="danger"
              onClick={() => {
                dialog.current?.close();
                void run();
              }}
            >
              Yes, run {manifest.name}
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}

function PlanPreview({ run }: { run: RunDocument }) {
  if (run.error !== null) return <ErrorBox error={run.error} />;
  const plan = run.plan;
  return (
    <Panel title="Dry run: what would run where">
      {plan === null ? (
        <p class="muted">No plan.</p>
      ) : (
        <>
          <p>
            Plugin v{plan.plugin.version}, sha256 <code class="hash">{plan.plugin.sha256}</code>,
            timeout {plan.timeout_ms / 1000} s.
          </p>
          <p>
            Parameters: <code>{JSON.stringify(plan.parameters)}</code>
          </p>
          <div class="table-wrap">
            <table class="rows plan">
              <thead>
                <tr>
                  <th scope="col">Node</th>
                  <th scope="col">Transport</th>
                  <th scope="col">Would run</th>
                </tr>
              </thead>
              <tbody>
                {plan.nodes.map((node) => (
                  <tr key={node.target.name}>
                    <td>{node.target.name}</td>
                    <td>{node.transport}</td>
                    <td>
                      <code>{node.would_run}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </Panel>
  );
}
