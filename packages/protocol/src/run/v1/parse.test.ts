import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseBpcsResponse } from '../../bpcs/v1/parse.js';
import type { ParseResult } from '../../validation/parse.js';
import {
  DEFAULT_MAX_RUN_DOCUMENT_BYTES,
  DEFAULT_MAX_RUN_DOCUMENT_DEPTH,
  isRunEvent,
  isRunPlan,
  isRunResultDocument,
  parseRunEvent,
  parseRunEventStream,
  parseRunNodeResult,
  parseRunOutputLine,
  parseRunPlan,
  parseRunResultDocument,
  parseRunSummary,
  validateRunEvent,
  validateRunEventStream,
  validateRunNodeResult,
  validateRunOutputLine,
  validateRunPlan,
  validateRunResultDocument,
  validateRunSummary,
} from './parse.js';
import type { RunEvent, RunPlan, RunResultDocument } from './schema.js';

const examples = new URL('../../../../../specs/examples/run/valid/', import.meta.url);
const load = <T>(file: string): T => JSON.parse(readFileSync(new URL(file, examples), 'utf8')) as T;
const clone = <T>(value: T): T => structuredClone(value);

const noop = load<RunResultDocument>('result.cli-noop-success.json');
const fleet = load<RunResultDocument>('result.cli-fleet-timeout-canary-skipped.json');
const dryRun = load<RunResultDocument>('result.cli-dry-run-sensitive-redacted.json');
const refused = load<RunResultDocument>('result.cli-unknown-action.json');
const stream = load<RunEvent[]>('stream.fleet-canary-failed.json');
const plan = dryRun.plan as RunPlan;

/** The code and the set of pointers of a failed result (`ok` for a success). */
function outcome(result: ParseResult<unknown>): unknown {
  if (result.ok) return 'ok';
  const violations = (result.error.details?.violations ?? []) as { pointer: string }[];
  return { code: result.error.code, pointers: [...new Set(violations.map((v) => v.pointer))] };
}
const violation = (...pointers: string[]) => ({ code: 'SCHEMA_VIOLATION', pointers });

describe('run-result documents', () => {
  it('accept a CLI document in every input form, unchanged', () => {
    const text = JSON.stringify(noop);
    expect(parseRunResultDocument(text)).toEqual({ ok: true, value: noop });
    expect(parseRunResultDocument(new TextEncoder().encode(text))).toEqual({
      ok: true,
      value: noop,
    });
    expect(validateRunResultDocument(noop)).toEqual({ ok: true, value: noop });
    expect(isRunResultDocument(noop)).toBe(true);
  });

  it('return no partial object on failure and name the source and trace id given', () => {
    const result = parseRunResultDocument(JSON.stringify({ ...noop, exit_code: -1 }), {
      source: { component: 'rune-server' },
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
    expect(result).not.toHaveProperty('value');
    expect(result.ok ? undefined : result.error.toJSON()).toMatchObject({
      code: 'SCHEMA_VIOLATION',
      source: { component: 'rune-server' },
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
  });

  it('refuse another version of the document with UNSUPPORTED_SCHEMA_VERSION at /schema', () => {
    const result = validateRunResultDocument({ ...noop, schema: 'rune-run-result/v2' });
    expect(result.ok ? undefined : result.error.details).toMatchObject({
      received: 'rune-run-result/v2',
      supported: ['rune-run-result/v1'],
      pointer: '/schema',
    });
  });

  it('accept the optional members of a service', () => {
    const { schema, ...rest } = noop;
    const document = {
      schema,
      id: '0190a8e5-7c4b-7d2e-9f1a-3b5c7d9e1f20',
      status: 'succeeded',
      principal: 'token:ci-deploy',
      source: 'workflow',
      created_at: '2026-12-01T10:10:00Z',
      started_at: '2026-12-01T10:10:00.1+01:00',
      finished_at: '2026-12-01T10:10:01Z',
      ...rest,
    };
    expect(outcome(validateRunResultDocument(document))).toBe('ok');
  });

  it('tie the status to exit_code, error and summary', () => {
    const running = { ...refused, status: 'running', exit_code: null, error: null };
    expect(outcome(validateRunResultDocument(running))).toBe('ok');
    expect(outcome(validateRunResultDocument({ ...running, status: undefined }))).toEqual(
      violation('/exit_code'),
    );
    expect(outcome(validateRunResultDocument({ ...running, status: 'failed' }))).toEqual(
      violation('/exit_code'),
    );
    expect(outcome(validateRunResultDocument({ ...noop, status: 'running' }))).toEqual(
      violation('/status'),
    );
    expect(outcome(validateRunResultDocument({ ...fleet, status: 'failed' }))).toBe('ok');
    expect(outcome(validateRunResultDocument({ ...fleet, status: 'partial' }))).toEqual(
      violation('/status'),
    );
    expect(outcome(validateRunResultDocument({ ...fleet, status: 'succeeded' }))).toEqual(
      violation('/status'),
    );
    expect(outcome(validateRunResultDocument({ ...refused, status: 'failed' }))).toBe('ok');
    expect(outcome(validateRunResultDocument({ ...refused, exit_code: 0 }))).toEqual(
      violation('/exit_code'),
    );
  });

  it('tie the summary to the nodes and the document', () => {
    const moved = clone(fleet);
    if (moved.summary === null) throw new Error('fixture without summary');
    moved.summary.failed = 2;
    moved.summary.skipped = 1;
    expect(outcome(validateRunResultDocument(moved))).toEqual(violation('/summary'));
    const other = clone(noop);
    if (other.summary === null) throw new Error('fixture without summary');
    other.summary.action = 'check-disk';
    expect(outcome(validateRunResultDocument(other))).toEqual(violation('/summary/action'));
    expect(outcome(validateRunResultDocument({ ...fleet, nodes: fleet.nodes.slice(1) }))).toEqual(
      violation('/nodes'),
    );
  });

  it('accept 67 levels, enough for a BPCS result of the full 64 levels inside', () => {
    const document = clone(noop);
    const node = document.nodes[0];
    if (node?.response === null || node === undefined) throw new Error('fixture without response');
    // BPCS levels: result 1, payload 2, output_data 3, then 61 nested arrays reach level 64.
    const deep = (levels: number): unknown => (levels === 0 ? [] : [deep(levels - 1)]);
    node.response.payload.output_data = { deep: deep(60) };
    expect(outcome(parseBpcsResponse(JSON.stringify(node.response)))).toBe('ok');
    expect(outcome(parseRunResultDocument(JSON.stringify(document)))).toBe('ok');
    node.response.payload.output_data = { deep: deep(61) };
    expect(outcome(parseRunResultDocument(JSON.stringify(document)))).toEqual({
      code: 'DOCUMENT_TOO_DEEP',
      pointers: [],
    });
    expect(DEFAULT_MAX_RUN_DOCUMENT_DEPTH).toBe(67);
  });

  it('refuse documents over the size limit before parsing them, and honour a lower limit', () => {
    const text = JSON.stringify(noop);
    expect(outcome(parseRunResultDocument(text, { maxBytes: 100 }))).toEqual({
      code: 'DOCUMENT_TOO_LARGE',
      pointers: [],
    });
    const result = parseRunResultDocument(`${text}${' '.repeat(DEFAULT_MAX_RUN_DOCUMENT_BYTES)}`);
    expect(result.ok ? undefined : result.error.details).toMatchObject({
      limit: DEFAULT_MAX_RUN_DOCUMENT_BYTES,
    });
  });
});

describe('sensitive parameters', () => {
  it('are accepted redacted', () => {
    expect(plan.sensitive_parameters).toEqual(['secret']);
    expect(plan.parameters.secret).toBe('[REDACTED]');
    expect(outcome(validateRunPlan(plan))).toBe('ok');
    expect(isRunPlan(plan)).toBe(true);
  });

  it('are refused in clear in the plan parameters, wherever the plan is carried', () => {
    const leaked = clone(plan);
    leaked.parameters.secret = 'hunter2';
    expect(outcome(validateRunPlan(leaked))).toEqual(violation('/parameters/secret'));
    expect(outcome(validateRunResultDocument({ ...dryRun, plan: leaked }))).toEqual(
      violation('/plan/parameters/secret'),
    );
    const { nodes: _nodes, ...line } = { type: 'summary', ...dryRun, plan: leaked };
    expect(outcome(validateRunOutputLine(line))).toEqual(violation('/plan/parameters/secret'));
  });

  it('are refused in clear in a request of the plan', () => {
    const leaked = clone(plan);
    const node = leaked.nodes[0];
    if (node === undefined) throw new Error('fixture without nodes');
    node.request.payload.data.input_parameters.secret = { value: 'hunter2' };
    expect(outcome(validateRunPlan(leaked))).toEqual(
      violation('/nodes/0/request/payload/data/input_parameters/secret'),
    );
  });

  it('are refused in clear in the plan of a run-start event', () => {
    const start = clone(stream[0]);
    if (start?.type !== 'run-start') throw new Error('fixture does not start with run-start');
    start.plan.sensitive_parameters = ['sleep_ms'];
    expect(outcome(validateRunEvent(start))).toEqual(
      violation(
        '/plan/parameters/sleep_ms',
        '/plan/nodes/0/request/payload/data/input_parameters/sleep_ms',
        '/plan/nodes/1/request/payload/data/input_parameters/sleep_ms',
        '/plan/nodes/2/request/payload/data/input_parameters/sleep_ms',
      ),
    );
  });

  it('may be absent (an optional sensitive parameter nobody gave)', () => {
    const absent = clone(plan);
    delete absent.parameters.secret;
    for (const node of absent.nodes) delete node.request.payload.data.input_parameters.secret;
    absent.supplied_sensitive_parameters = [];
    expect(outcome(validateRunPlan(absent))).toBe('ok');
  });
});

describe('plans', () => {
  it('refuse a request that does not match its node or plan', () => {
    const wrong = clone(plan);
    const node = wrong.nodes[0];
    if (node === undefined) throw new Error('fixture without nodes');
    node.request.routing.transport = 'ssh';
    expect(outcome(validateRunPlan(wrong))).toEqual(
      violation('/nodes/0/request/routing/transport'),
    );
    expect(
      outcome(parseRunPlan(JSON.stringify({ ...plan, schema: 'rune-execution-plan/v9' }))),
    ).toEqual({
      code: 'UNSUPPORTED_SCHEMA_VERSION',
      pointers: [],
    });
  });
});

describe('node results and summaries', () => {
  const [failed, skipped] = fleet.nodes;

  it('accept the CLI node results', () => {
    for (const node of fleet.nodes) expect(outcome(validateRunNodeResult(node))).toBe('ok');
    expect(outcome(parseRunNodeResult(JSON.stringify(skipped)))).toBe('ok');
  });

  it('tie status, error and exit code together', () => {
    expect(outcome(validateRunNodeResult({ ...failed, error: null }))).toEqual(violation('/error'));
    expect(outcome(validateRunNodeResult({ ...skipped, exit_code: 0 }))).toEqual(
      violation('/exit_code'),
    );
    expect(outcome(validateRunNodeResult({ ...skipped, termination: 'exit' }))).toEqual(
      violation('/termination'),
    );
  });

  it('require an honest containment report', () => {
    const contained = { method: 'run-marker', killed: 3, complete: true };
    expect(outcome(validateRunNodeResult({ ...failed, containment: contained }))).toBe('ok');
    expect(
      outcome(validateRunNodeResult({ ...failed, containment: { ...contained, complete: false } })),
    ).toEqual(violation('/containment/detail'));
    expect(
      outcome(validateRunNodeResult({ ...failed, containment: { ...contained, method: 'none' } })),
    ).toEqual(violation('/containment/complete'));
    expect(
      outcome(validateRunNodeResult({ ...failed, containment: { ...contained, killed: 1.5 } })),
    ).toEqual(violation('/containment/killed'));
  });

  it('check the summary arithmetic', () => {
    expect(outcome(validateRunSummary(fleet.summary))).toBe('ok');
    expect(outcome(parseRunSummary(JSON.stringify({ ...fleet.summary, total: 2 })))).toEqual(
      violation('/total'),
    );
    expect(outcome(validateRunSummary({ ...fleet.summary, exit_code: 0 }))).toEqual(
      violation('/exit_code'),
    );
  });
});

describe('JSONL output lines', () => {
  it('tell node lines from summary lines by type', () => {
    const node = { type: 'node', trace_id: fleet.trace_id, ...fleet.nodes[0] };
    expect(outcome(parseRunOutputLine(JSON.stringify(node)))).toBe('ok');
    expect(outcome(validateRunOutputLine({ ...node, type: 'nodes' }))).toEqual(violation('/type'));
    // A node line has no version member: one that carries `schema` is unknown, not a version.
    expect(outcome(validateRunOutputLine({ ...node, schema: 'rune-run-result/v2' }))).toEqual(
      violation('/schema'),
    );
    const { nodes: _nodes, ...summary } = { type: 'summary', ...refused };
    expect(outcome(validateRunOutputLine(summary))).toBe('ok');
    expect(outcome(validateRunOutputLine({ ...summary, schema: 'rune-run-result/v2' }))).toEqual({
      code: 'UNSUPPORTED_SCHEMA_VERSION',
      pointers: [],
    });
    expect(outcome(validateRunOutputLine([]))).toEqual(violation(''));
  });
});

describe('run events', () => {
  it('accept every event of a stream, each on its own', () => {
    for (const event of stream) expect(isRunEvent(event)).toBe(true);
    expect(outcome(parseRunEvent(JSON.stringify(stream[2])))).toBe('ok');
  });

  it('report violations inside the schema of the event type', () => {
    const end = clone(stream[2]);
    if (end?.type !== 'node-end') throw new Error('fixture event 2 is not node-end');
    expect(
      outcome(validateRunEvent({ ...end, result: { ...end.result, status: 'done' } })),
    ).toEqual(violation('/result/status'));
    expect(outcome(validateRunEvent({ ...end, type: 'node-finish' }))).toEqual(violation('/type'));
    expect(outcome(validateRunEvent({ ...end, schema_version: 'rune-run-event/v2' }))).toEqual({
      code: 'UNSUPPORTED_SCHEMA_VERSION',
      pointers: [],
    });
  });

  it('accept a whole stream, with gaps in seq', () => {
    expect(outcome(validateRunEventStream(stream))).toBe('ok');
    const gapped = stream.map((event, index) => ({ ...event, seq: index === 0 ? 1 : index * 7 }));
    expect(outcome(parseRunEventStream(JSON.stringify(gapped)))).toBe('ok');
  });

  it('refuse a stream out of order, pointing at the event', () => {
    const swapped = [stream[0], stream[2], stream[1], ...stream.slice(3)];
    expect(outcome(validateRunEventStream(swapped))).toEqual(
      violation('/1/result/status', '/2/seq', '/2/node'),
    );
    expect(outcome(validateRunEventStream(stream.slice(1)))).toEqual(violation('/0/type'));
    expect(outcome(validateRunEventStream([]))).toEqual(violation(''));
    const broken = clone(stream);
    broken[4] = { ...(broken[4] as RunEvent), seq: 0 };
    expect(outcome(validateRunEventStream(broken))).toEqual(violation('/4/seq'));
  });
});

describe('never throwing', () => {
  const hostile: unknown[] = [
    undefined,
    null,
    42n,
    () => 1,
    Symbol('x'),
    new Proxy(
      {},
      {
        get() {
          throw new Error('trap');
        },
        ownKeys() {
          throw new Error('trap');
        },
        getOwnPropertyDescriptor() {
          throw new Error('trap');
        },
      },
    ),
    Object.defineProperty({ ...noop }, 'nodes', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    }),
    Object.defineProperty(clone(stream[0]) as object, 'plan', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    }),
  ];
  const validators = [
    validateRunPlan,
    validateRunNodeResult,
    validateRunSummary,
    validateRunResultDocument,
    validateRunOutputLine,
    validateRunEvent,
    validateRunEventStream,
  ];

  it('holds for hostile values: every validator returns an error', () => {
    for (const validate of validators) {
      for (const value of hostile) {
        const result = validate(value);
        expect(result.ok).toBe(false);
        // Another document's version member is a version refusal; anything else a violation.
        if (!result.ok) {
          expect(['SCHEMA_VIOLATION', 'UNSUPPORTED_SCHEMA_VERSION']).toContain(result.error.code);
        }
      }
      expect(validate([hostile.at(-1)]).ok).toBe(false);
    }
  });

  it('holds for hostile text', () => {
    const parsers = [
      parseRunPlan,
      parseRunNodeResult,
      parseRunSummary,
      parseRunResultDocument,
      parseRunOutputLine,
      parseRunEvent,
      parseRunEventStream,
    ];
    const texts = ['', '{', '[]', 'null', '"x"', '{"schema":7}', '[{"type":"run-start"}]'];
    for (const parse of parsers) {
      for (const text of texts) expect(parse(text).ok).toBe(false);
      expect(parse(new Uint8Array([0xff, 0xfe])).ok).toBe(false);
    }
  });
});

describe('specs/run-v1.md', () => {
  it('shows a complete example that is the corpus file and valid', () => {
    const markdown = readFileSync(
      new URL('../../../../../specs/run-v1.md', import.meta.url),
      'utf8',
    );
    const match =
      /<!-- example:run-result:start -->\n```json\n([\s\S]*?)```\n<!-- example:run-result:end -->/.exec(
        markdown,
      );
    expect(match?.[1], 'specs/run-v1.md has no run-result example').toBeDefined();
    const shown = match?.[1] ?? '';
    expect(JSON.parse(shown)).toEqual(load('result.cli-partial.json'));
    expect(outcome(parseRunResultDocument(shown))).toBe('ok');
  });
});
