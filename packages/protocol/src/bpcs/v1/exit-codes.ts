import type { ErrorCode } from '../../eps/v1/catalog.js';

/**
 * The BPCS v1 exit-code table. A plugin's exit code and the `result` it prints must agree:
 * exit 0 goes with `success` or `partial`; every other documented code goes with `failure`.
 */
export const BPCS_EXIT_CODES = {
  /** The action succeeded (result `success` or `partial`). */
  SUCCESS: 0,
  /** The action was attempted and failed. */
  FAILURE: 1,
  /** The request was invalid: malformed JSON, unknown schema_version, bad parameters. */
  INVALID_INPUT: 2,
  /** A precondition on the node is not met: a tool or service the plugin needs is absent. */
  PRECONDITION_FAILED: 3,
  /** The plugin lacks a privilege it needs (e.g. must run as root). */
  PERMISSION_DENIED: 4,
  /** An operation the plugin waited on did not complete within its own bounded wait. */
  OPERATION_TIMEOUT: 5,
} as const;

/** One documented BPCS exit code. */
export type BpcsExitCode = (typeof BPCS_EXIT_CODES)[keyof typeof BPCS_EXIT_CODES];

/** The EPS code the execution step reports for each documented non-zero exit code. */
export const BPCS_EXIT_CODE_ERRORS: Readonly<Record<Exclude<BpcsExitCode, 0>, ErrorCode>> = {
  1: 'PLUGIN_FAILED',
  2: 'PLUGIN_INVALID_INPUT',
  3: 'PLUGIN_PRECONDITION_FAILED',
  4: 'PLUGIN_PERMISSION_DENIED',
  5: 'PLUGIN_OPERATION_TIMEOUT',
};

/** Exit codes the shell uses for "found but not executable" and "not found". */
export const SHELL_NOT_EXECUTABLE_EXIT_CODES: readonly number[] = [126, 127];

/** True when `code` is in the BPCS v1 table. */
export function isBpcsExitCode(code: number): code is BpcsExitCode {
  return Number.isInteger(code) && code >= 0 && code <= 5;
}

/** One row of the BPCS v1 exit-code table (specs/bpcs-v1.md is generated from these rows). */
export interface BpcsExitCodeRow {
  /** The exit code. */
  readonly code: BpcsExitCode;
  /** Its name in {@link BPCS_EXIT_CODES}. */
  readonly name: keyof typeof BPCS_EXIT_CODES;
  /** The `payload.result` values that agree with it. */
  readonly results: readonly ('success' | 'partial' | 'failure')[];
  /** The EPS code the control node reports for the run, or null for success. */
  readonly error: ErrorCode | null;
  /** When a plugin uses it. */
  readonly meaning: string;
}

/** The BPCS v1 exit-code table, in code order. */
export const BPCS_EXIT_CODE_TABLE: readonly BpcsExitCodeRow[] = [
  {
    code: 0,
    name: 'SUCCESS',
    results: ['success', 'partial'],
    error: null,
    meaning: 'The action was done (partial: done, with warnings in summary/output_data).',
  },
  {
    code: 1,
    name: 'FAILURE',
    results: ['failure'],
    error: 'PLUGIN_FAILED',
    meaning: 'The action was attempted and failed.',
  },
  {
    code: 2,
    name: 'INVALID_INPUT',
    results: ['failure'],
    error: 'PLUGIN_INVALID_INPUT',
    meaning:
      'The request was unusable: not JSON, unknown schema_version, bad or missing parameters.',
  },
  {
    code: 3,
    name: 'PRECONDITION_FAILED',
    results: ['failure'],
    error: 'PLUGIN_PRECONDITION_FAILED',
    meaning: 'A precondition on the node is not met: a required tool or service is absent.',
  },
  {
    code: 4,
    name: 'PERMISSION_DENIED',
    results: ['failure'],
    error: 'PLUGIN_PERMISSION_DENIED',
    meaning: 'The plugin lacks a privilege it needs (e.g. it must run as root).',
  },
  {
    code: 5,
    name: 'OPERATION_TIMEOUT',
    results: ['failure'],
    error: 'PLUGIN_OPERATION_TIMEOUT',
    meaning: 'Something the plugin waited for did not happen within its own bounded wait.',
  },
];
