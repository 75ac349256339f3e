/**
 * The Bash library's fast path for the canonical request encoding (specs/rcs-v1.md, "Canonical
 * encoding"): `_bpcs_parse_canonical` must give exactly what the general parser gives for the
 * same bytes, or step aside. Each input goes through both (fixtures/canonical-probe.sh prints
 * the tables each filled); when the fast path accepts, the general parser must accept too and
 * fill identical tables. Requests as core encodes them must take the fast path (else it would
 * never be tested); hostile ones — escapes, control characters, `\u0000`, envelope-shaped text
 * inside parameter values, duplicate keys, extra members, another member order — must either
 * fall back or parse identically. Loosening any check of the fast path makes one of these fail.
 * Runs against the library source and against the library as the assembler ships it.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeRcsRequest } from '@rune/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assembleBpcsLibrary,
  BASH,
  createWorkspace,
  makeRequest,
  type PluginWorkspace,
} from './harness.js';

const driver = fileURLToPath(new URL('./fixtures/canonical-probe.sh', import.meta.url));
const sourceLib = fileURLToPath(new URL('../lib/bpcs.sh', import.meta.url));

let ws: PluginWorkspace;
const libraries: { name: string; path: string }[] = [];
beforeAll(() => {
  ws = createWorkspace();
  // What `globbed-?` (a node name below) would expand to, were the envelope split with globbing.
  writeFileSync(join(ws.root, 'globbed-x'), '');
  libraries.push({ name: 'source', path: sourceLib });
  libraries.push({ name: 'assembled', path: assembleBpcsLibrary(sourceLib, ws.root) });
});
afterAll(() => ws.dispose());

interface Outcome {
  fast: boolean;
  fastTables: string;
  general: boolean;
  generalTables: string;
}

let counter = 0;
function parseBoth(
  library: string,
  input: string | Buffer,
  mode: 'canonical' | 'flat' = 'canonical',
): Outcome {
  const file = join(ws.root, `request-${counter++}.json`);
  writeFileSync(file, input);
  // A directory full of files as the working directory: an envelope string that is a glob
  // pattern would expand if the fast path split the envelope with globbing on.
  const result = spawnSync(BASH, [driver, library, file, ...(mode === 'flat' ? ['flat'] : [])], {
    cwd: ws.root,
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
    timeout: 60_000,
  });
  expect(result.status, result.stderr).toBe(0);
  const [fastPart = '', generalPart = ''] = result.stdout.split('--\n');
  const [fastHead, ...fastLines] = fastPart.split('\n');
  const [generalHead, ...generalLines] = generalPart.split('\n');
  return {
    fast: fastHead === 'fast',
    fastTables: fastLines.join('\n'),
    general: generalHead === 'general',
    generalTables: generalLines.join('\n'),
  };
}

/** The fast path either steps aside or agrees with the general parser on every table entry. */
function expectAgreement(outcome: Outcome): void {
  if (!outcome.fast) return;
  expect(outcome.general, 'the fast path accepted what the general parser refuses').toBe(true);
  expect(outcome.fastTables).toBe(outcome.generalTables);
}

const canonical = (parameters: Record<string, unknown> = {}, node = 'web-01') =>
  encodeRcsRequest(makeRequest('probe', parameters, { node }));

/** `text` with its (first) occurrence of `from` replaced by `to`; the test fails if absent. */
function edit(text: string, from: string, to: string): string {
  expect(text).toContain(from);
  return text.replace(from, () => to);
}

const TAIL = ',"options":{"dry_run":false,"timeout_ms":60000}}}}';
const PARAMS = ',"data":{"input_parameters":';

/** Requests as RUNE sends them: the fast path must take every one. */
const CANONICAL: [string, string][] = [
  ['no parameters', canonical()],
  ['plain parameters', canonical({ sleep_ms: 0, message: 'hello', flags: [true, false] })],
  [
    'parameters with escapes, unicode and nesting',
    canonical({
      quotes: 'she said "hi" \\ and left',
      control: 'tab\tnewline\ncr\rbell\u0007 nul\u0000',
      unicode: 'é 日本 😀 \u2028',
      nested: { deep: { deeper: [1, { x: 'y' }, []] }, empty: {} },
      numbers: [0, -1, 3.25, 1e3, 12345678901234],
      'weird key "quoted"\n': 'value',
    }),
  ],
  [
    'parameter values that look like the envelope',
    canonical({
      a: TAIL,
      b: PARAMS,
      options: { dry_run: true, timeout_ms: 1 },
      input_parameters: {},
      c: '"}}},"routing":{"action":"evil"',
    }),
  ],
  ['glob characters in envelope strings', canonical({}, 'globbed-?')],
  ['a star as node name', canonical({}, '*')],
  ['non-ASCII in the node name', canonical({}, 'nœud-ü')],
  ['a trailing newline', `${canonical({ x: 1 })}\n`],
  ['an empty parameter key (the serializer leaves it out)', canonical({ '': 'x', a: 1 })],
  ['UTF-8 in a parameter value', canonical({ u: 'é 日本' })],
];

/** Hand-made and hostile requests: the fast path may only step aside or agree. */
const base = canonical({ x: 1 });
const HOSTILE: [string, string | Buffer][] = [
  ['an escaped quote in the host', edit(base, '"host":"test-host"', '"host":"a\\"b"')],
  ['an escaped backslash in the host', edit(base, '"host":"test-host"', '"host":"a\\\\"')],
  ['a \\u escape in the node', edit(base, '"node":"web-01"', '"node":"web\\u002d01"')],
  ['\\u0000 in the node', edit(base, '"node":"web-01"', '"node":"web\\u000001"')],
  ['a \\/ escape in the action', edit(base, '"action":"probe"', '"action":"pro\\/be"')],
  ['a raw newline in the timestamp', edit(base, '"timestamp":"', '"timestamp":"\n')],
  ['a raw tab in the host', edit(base, '"host":"test-host"', '"host":"test\thost"')],
  ['a raw 0x1f in the version', edit(base, '"version":"0.1.0"', '"version":"0.1\x1f0"')],
  [
    'invalid UTF-8 in the host',
    Buffer.from(`${base.split('test-host')[0]}\xff${base.split('test-host')[1]}`, 'latin1'),
  ],
  [
    'invalid UTF-8 in the node',
    Buffer.from(edit(base, '"node":"web-01"', '"node":"web\xff"'), 'latin1'),
  ],
  [
    'invalid UTF-8 in a parameter value',
    Buffer.from(edit(base, '{"x":1}', '{"x":"\xff"}'), 'latin1'),
  ],
  ['whitespace after a colon', edit(base, '"routing":{', '"routing": {')],
  ['pretty-printed', JSON.stringify(JSON.parse(base), null, 2)],
  ['leading whitespace', ` ${base}`],
  ['two trailing newlines', `${base}\n\n`],
  ['a trailing space', `${base} `],
  ['CRLF at the end', `${base}\r\n`],
  ['another member order', JSON.stringify({ ...JSON.parse(base), routing: undefined, z: 1 })],
  [
    'routing first',
    (() => {
      const { routing, ...rest } = JSON.parse(base);
      return JSON.stringify({ routing, ...rest });
    })(),
  ],
  [
    'options before input_parameters',
    (() => {
      const request = JSON.parse(base);
      const { options, input_parameters } = request.payload.data;
      request.payload.data = { options, input_parameters };
      return JSON.stringify(request);
    })(),
  ],
  [
    'a duplicate routing object',
    edit(
      base,
      ',"payload":',
      ',"routing":{"action":"evil","node":"x","transport":"local","deploy_mode":"ship"},"payload":',
    ),
  ],
  [
    'a duplicate trace id',
    edit(base, '","timestamp":', '","trace_id":"ffffffffffffffffffffffffffffffff","timestamp":'),
  ],
  [
    'an extra envelope member',
    edit(base, '"deploy_mode":"ship"', '"deploy_mode":"ship","extra":"x"'),
  ],
  ['duplicate parameter keys', edit(base, '{"x":1}', '{"x":1,"x":{"y":[2]}}')],
  [
    'a member between input_parameters and options',
    edit(base, '{"x":1},"options"', '{"x":1},"evil":{"a":1},"options"'),
  ],
  [
    'a second options object',
    edit(base, TAIL, `,"options":{"dry_run":true,"timeout_ms":5}${TAIL}`),
  ],
  [
    'a duplicate timeout in the tail',
    edit(base, '"timeout_ms":60000}', '"timeout_ms":60000,"timeout_ms":1}'),
  ],
  [
    'a fake tail inside the parameters',
    edit(base, '{"x":1}', `{"x":{"options":{"dry_run":true,"timeout_ms":5}}}`),
  ],
  ['the tail inside a parameter string', edit(base, '{"x":1}', `{"x":${JSON.stringify(TAIL)}}`)],
  [
    'a tail that ends the document early',
    edit(base, '{"x":1}', '{"x":1},"options":{"dry_run":true,"timeout_ms":5}}}}'),
  ],
  ['parameters that are an array', edit(base, '{"x":1}', '[1,2]')],
  ['parameters that are a string', edit(base, '{"x":1}', '"x"')],
  ['parameters left open', edit(base, '{"x":1}', '{"x":1')],
  ['parameters with trailing data', edit(base, '{"x":1}', '{"x":1} 2')],
  ['two parameter objects', edit(base, '{"x":1}', '{"x":1}{"y":2}')],
  ['dry_run as a string', edit(base, '"dry_run":false', '"dry_run":"false"')],
  ['timeout with a leading zero', edit(base, '"timeout_ms":60000', '"timeout_ms":060000')],
  ['negative timeout', edit(base, '"timeout_ms":60000', '"timeout_ms":-1')],
  ['fractional timeout', edit(base, '"timeout_ms":60000', '"timeout_ms":1.5')],
  ['exponent timeout', edit(base, '"timeout_ms":60000', '"timeout_ms":6e4')],
  ['zero timeout', edit(base, '"timeout_ms":60000', '"timeout_ms":0')],
  ['a document after the document', `${base}${base}`],
  ['garbage after the document', `${base}x`],
  ['one closing brace too few', base.slice(0, -1)],
  ['one closing brace too many', `${base}}`],
  ['an empty document', ''],
  ['a huge envelope string', edit(base, '"host":"test-host"', `"host":"${'h'.repeat(3000)}"`)],
  ['nesting at the depth limit', edit(base, '{"x":1}', `{"x":${'['.repeat(60)}${']'.repeat(60)}}`)],
  [
    'nesting past the depth limit',
    edit(base, '{"x":1}', `{"x":${'['.repeat(61)}${']'.repeat(61)}}`),
  ],
];

describe.each(['source', 'assembled'])('canonical fast path (%s library)', (which) => {
  const library = () => libraries.find((entry) => entry.name === which)!.path;

  it.each(CANONICAL)('takes the fast path and agrees: %s', (_name, input) => {
    const outcome = parseBoth(library(), input);
    expect(outcome.fast, 'a canonical request must take the fast path').toBe(true);
    expectAgreement(outcome);
  });

  it.each(HOSTILE)('steps aside or agrees: %s', (_name, input) => {
    expectAgreement(parseBoth(library(), input));
  });

  it('steps aside for every envelope string with an escape or a control character', () => {
    for (const [, input] of HOSTILE.slice(0, 8)) {
      expect(parseBoth(library(), input).fast).toBe(false);
    }
  });
});

/**
 * The flat parameter reader (`_bpcs_parse_flat`): compact objects of plain scalars without the
 * general parser, which is deferred (@rune-cold) behind it. It must fill exactly the tables the
 * general parser fills for the same text, or step aside. Each input is parameters text as it
 * stands between the envelope and the options tail.
 */
const FLAT: [string, string][] = [
  ['no members', '{}'],
  ['one string', '{"message":"hello"}'],
  ['what rune run noop sends', '{"sleep_ms":0}'],
  ['every scalar', '{"a":"x","b":0,"c":123456789012345678,"d":true,"e":false,"f":null}'],
  ['an empty key and an empty string', '{"":"empty key","k":""}'],
  ['UTF-8 in a value', '{"u":"é 日本 😀"}'],
  ['spaces, braces, commas and colons inside strings', '{"a b":"} , {","c":"x:y","d":"[1]"}'],
  [
    'keys that look like the envelope',
    '{"routing":"x","payload":"p","options":"z","input_parameters":"w","message_metadata":"m"}',
  ],
  ['a 0x7f byte in a value', '{"a":"del\x7f"}'],
];

const FLAT_HOSTILE: [string, string | Buffer][] = [
  ['an escaped quote in a value', '{"a":"x\\"y"}'],
  ['an escaped backslash in a value', '{"a":"x\\\\"}'],
  ['a backslash before the closing quote', '{"a":"x\\","b":"y"}'],
  ['\\u0000 in a value', '{"a":"nul\\u0000"}'],
  ['a \\u escape in a value', '{"a":"\\u0041"}'],
  ['a raw tab in a value', '{"a":"tab\there"}'],
  ['a raw newline in a value', '{"a":"line\nbreak"}'],
  ['a raw 0x1f in a value', '{"a":"unit\x1fsep"}'],
  ['an escaped key', '{"a\\"b":1}'],
  ['a \\u escape in a key', '{"\\u0061":1}'],
  ['a plain and an escaped spelling of one key', '{"a":1,"\\u0061":2}'],
  ['a raw 0x1f in a key', '{"a\x1fb":1}'],
  ['a raw newline in a key', '{"a\nb":1}'],
  ['invalid UTF-8 in a key', Buffer.from('{"\xff":1}', 'latin1')],
  ['UTF-8 in a key', '{"é":1}'],
  ['duplicate keys', '{"a":1,"a":2}'],
  ['duplicate keys, nested last', '{"a":1,"a":{"b":[2]}}'],
  ['a nested object', '{"a":{"b":1}}'],
  ['an array', '{"a":[1,"x"]}'],
  ['an empty object value', '{"a":{}}'],
  ['a negative number', '{"a":-1}'],
  ['a fraction', '{"a":1.5}'],
  ['an exponent', '{"a":1e3}'],
  ['a leading zero', '{"a":01}'],
  ['a 19-digit integer', `{"a":${'9'.repeat(19)}}`],
  ['a 500-digit integer', `{"a":${'9'.repeat(500)}}`],
  ['truex', '{"a":truex}'],
  ['nul', '{"a":nul}'],
  ['a space after the brace', '{ "a":1}'],
  ['a space before the colon', '{"a" :1}'],
  ['a space after the colon', '{"a": 1}'],
  ['a space before the closing brace', '{"a":1 }'],
  ['a trailing comma', '{"a":1,}'],
  ['trailing data', '{"a":1}x'],
  ['two closing braces', '{"a":1}}'],
  ['two objects', '{"a":1}{"b":2}'],
  ['left open', '{"a":1'],
  ['an unterminated string', '{"a":"x'],
  ['an unterminated key', '{"a'],
  ['a key without a value', '{"a"}'],
  ['a member without a key', '{,}'],
  ['a key without a colon', '{"a":1,"b"}'],
  ['an array instead of an object', '["a"]'],
  ['a string instead of an object', '"x"'],
  ['a number instead of an object', '1'],
  ['nothing', ''],
];

describe.each(['source', 'assembled'])('flat parameter reader (%s library)', (which) => {
  const library = () => libraries.find((entry) => entry.name === which)!.path;

  it.each(FLAT)('takes flat parameters and agrees: %s', (_name, input) => {
    const outcome = parseBoth(library(), input, 'flat');
    expect(outcome.fast, 'flat parameters must take the flat reader').toBe(true);
    expectAgreement(outcome);
  });

  it.each(FLAT_HOSTILE)('steps aside or agrees: %s', (_name, input) => {
    expectAgreement(parseBoth(library(), input, 'flat'));
  });

  it('steps aside for escapes, control characters, high-byte keys, duplicates, nesting, whitespace and other numbers', () => {
    const agreeing = new Set(['a 19-digit integer']);
    for (const [name, input] of FLAT_HOSTILE) {
      if (agreeing.has(name)) continue;
      expect(parseBoth(library(), input, 'flat').fast, name).toBe(false);
    }
  });

  it('canonical requests with flat parameters take it, and nested ones still parse', () => {
    const flat = canonical({ message: 'hi', sleep_ms: 5, on: true });
    const nested = canonical({ paths: ['/var/log'], limits: { max: 5 } });
    for (const input of [flat, nested]) {
      const outcome = parseBoth(library(), input);
      expect(outcome.fast).toBe(true);
      expectAgreement(outcome);
    }
  });
});
