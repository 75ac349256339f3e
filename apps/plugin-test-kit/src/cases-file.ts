/**
 * The `<plugin>.cases.yaml` format: hand-written test cases for one plugin.
 *
 * A cases file scripts the world around the plugin — PATH shims standing in for systemctl, docker,
 * journalctl, ... with canned stdout/stderr/exit codes, per argument pattern and per call — and
 * states what the plugin must answer: exit code, result, error codes and output_data fields located
 * by JSON pointer. It is validated with a schema so that a typo is reported, never ignored.
 */
import { readFile } from 'node:fs/promises';
import { type ParseResult, RuneError, validateSchema } from '@rune/protocol';
import { type Static, Type } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';

/** One scripted answer of a shim. */
export const ShimResponseSchema = Type.Object(
  {
    stdout: Type.Optional(Type.String({ description: 'Written to stdout.' })),
    stderr: Type.Optional(Type.String({ description: 'Written to stderr.' })),
    exit_code: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 255, description: 'Exit code (default 0).' }),
    ),
  },
  { additionalProperties: false },
);
export type ShimResponse = Static<typeof ShimResponseSchema>;

/** One rule of a shim: which calls it answers and how. The first matching rule wins. */
export const ShimRuleSchema = Type.Object(
  {
    args: Type.Optional(
      Type.String({
        description:
          'Regular expression (JavaScript syntax) matched against the arguments joined by single spaces; absent matches every call.',
      }),
    ),
    stdout: Type.Optional(Type.String()),
    stderr: Type.Optional(Type.String()),
    exit_code: Type.Optional(Type.Integer({ minimum: 0, maximum: 255 })),
    sequence: Type.Optional(
      Type.Array(ShimResponseSchema, {
        minItems: 1,
        description:
          'Answers for the 1st, 2nd, ... call matching this rule; the last one repeats. Overrides stdout/stderr/exit_code.',
      }),
    ),
    mutating: Type.Optional(
      Type.Boolean({
        description: 'Calls matching this rule change the node (checked in dry-run).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ShimRule = Static<typeof ShimRuleSchema>;

/** Shims by command name: one rule or a list of rules. */
export const ShimsSchema = Type.Record(
  Type.String({ pattern: '^[A-Za-z0-9._+-]{1,64}$' }),
  Type.Union([ShimRuleSchema, Type.Array(ShimRuleSchema)]),
);
export type Shims = Static<typeof ShimsSchema>;

/** A command (and argument pattern) that changes the node; calling it in dry-run fails the test. */
export const MutatingCommandSchema = Type.Object(
  {
    command: Type.String({ pattern: '^[A-Za-z0-9._+-]{1,64}$' }),
    args: Type.Optional(
      Type.String({ description: 'Regular expression over the joined arguments.' }),
    ),
  },
  { additionalProperties: false },
);
export type MutatingCommand = Static<typeof MutatingCommandSchema>;

/** What a case expects. Every field is optional; absent fields are not checked. */
export const CaseExpectationSchema = Type.Object(
  {
    exit_code: Type.Optional(Type.Integer({ minimum: 0, maximum: 255 })),
    result: Type.Optional(
      Type.Union([Type.Literal('success'), Type.Literal('partial'), Type.Literal('failure')]),
    ),
    error_code: Type.Optional(
      Type.Union([Type.String(), Type.Null()], {
        description: "The code in the plugin's own BPCS error object (null: no error).",
      }),
    ),
    rune_code: Type.Optional(
      Type.Union([Type.String(), Type.Null()], {
        description:
          'The EPS code rune reports for the run (PLUGIN_FAILED, PLUGIN_PRECONDITION_FAILED, ...; null: success).',
      }),
    ),
    output_data: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description:
          'JSON pointer (into payload.output_data) → expected value or matcher ({$matches}, {$gte}, {$type}, ...).',
      }),
    ),
    summary: Type.Optional(Type.Unknown({ description: 'Expected summary: value or matcher.' })),
    stderr_contains: Type.Optional(Type.String()),
    calls: Type.Optional(
      Type.Array(Type.String(), {
        description:
          'Shim calls that must have happened, as "command arg1 arg2" (regular expressions).',
      }),
    ),
    no_calls: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Shim calls that must not have happened (regular expressions).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CaseExpectation = Static<typeof CaseExpectationSchema>;

/** One hand-written case. */
export const PluginCaseSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    dry_run: Type.Optional(Type.Boolean()),
    env: Type.Optional(Type.Record(Type.String(), Type.String())),
    timeout_ms: Type.Optional(Type.Integer({ minimum: 1 })),
    requires_root: Type.Optional(
      Type.Boolean({
        description:
          'The case needs euid 0 (bash $EUID cannot be faked); it is reported as skipped when not run as root.',
      }),
    ),
    stdin: Type.Optional(
      Type.String({ description: 'Raw stdin instead of a generated RCS request.' }),
    ),
    shims: Type.Optional(ShimsSchema),
    expect: Type.Optional(CaseExpectationSchema),
  },
  { additionalProperties: false },
);
export type PluginCase = Static<typeof PluginCaseSchema>;

/** A whole `<plugin>.cases.yaml`. */
export const CasesFileSchema = Type.Object(
  {
    shims: Type.Optional(ShimsSchema),
    mutating: Type.Optional(Type.Array(MutatingCommandSchema)),
    env: Type.Optional(Type.Record(Type.String(), Type.String())),
    generated: Type.Optional(
      Type.Boolean({
        description: 'Also run the cases generated from the manifest (default true).',
      }),
    ),
    samples: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description:
          'Valid values for parameters the kit cannot derive from the manifest (e.g. a required string with a pattern); used by the generated cases.',
      }),
    ),
    cases: Type.Optional(Type.Array(PluginCaseSchema)),
  },
  { additionalProperties: false, title: 'rune-plugin-test cases file' },
);
export type CasesFile = Static<typeof CasesFileSchema>;

/** Parses and validates a cases file's text. */
export function parseCasesFile(text: string, path = 'cases file'): ParseResult<CasesFile> {
  let value: unknown;
  try {
    value = parseYaml(text) ?? {};
  } catch (cause) {
    return {
      ok: false,
      error: new RuneError('INVALID_ARGUMENT', `${path} is not valid YAML: ${String(cause)}`, {
        cause,
      }),
    };
  }
  const validated = validateSchema(CasesFileSchema, value, path);
  if (!validated.ok) return validated;
  for (const [where, pattern] of collectPatterns(validated.value)) {
    try {
      new RegExp(pattern);
    } catch (cause) {
      return {
        ok: false,
        error: new RuneError(
          'INVALID_ARGUMENT',
          `${path}: ${where} is not a valid regular expression`,
          {
            cause,
            details: { pattern },
          },
        ),
      };
    }
  }
  return validated;
}

/** Reads, parses and validates a cases file. */
export async function loadCasesFile(path: string): Promise<ParseResult<CasesFile>> {
  return parseCasesFile(await readFile(path, 'utf8'), path);
}

function collectPatterns(file: CasesFile): [string, string][] {
  const patterns: [string, string][] = [];
  const fromShims = (shims: Shims | undefined, where: string) => {
    for (const [command, rules] of Object.entries(shims ?? {})) {
      for (const rule of Array.isArray(rules) ? rules : [rules]) {
        if (rule.args !== undefined) patterns.push([`${where}.${command}.args`, rule.args]);
      }
    }
  };
  fromShims(file.shims, 'shims');
  for (const entry of file.mutating ?? []) {
    if (entry.args !== undefined) patterns.push([`mutating.${entry.command}.args`, entry.args]);
  }
  for (const testCase of file.cases ?? []) {
    fromShims(testCase.shims, `cases["${testCase.name}"].shims`);
    for (const call of [...(testCase.expect?.calls ?? []), ...(testCase.expect?.no_calls ?? [])]) {
      patterns.push([`cases["${testCase.name}"].expect.calls`, call]);
    }
  }
  return patterns;
}
