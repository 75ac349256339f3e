/**
 * Reading a workflow file (YAML or JSON) and checking it, with every finding located by
 * line:column in that file.
 *
 * The `yaml` package keeps the source range of every node, so a finding that the protocol locates
 * by JSON pointer (`/steps/1/on_failure`) is mapped back to the text the author wrote. Checks come
 * in three layers: YAML syntax; the workflow v1 schema and its graph rules (`@rune/protocol`);
 * then what only core can know (actions in the registry, parameters against their manifests,
 * expressions compiled and their references resolved — {@link checkWorkflow}).
 */
import { readFileSync, statSync } from 'node:fs';
import {
  MAX_WORKFLOW_BYTES,
  RuneError,
  type SchemaViolation,
  validateWorkflowDefinition,
  type WorkflowDefinition,
} from '@rune/protocol';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { yamlValue } from '../yaml-located.js';
import { checkWorkflow, type WorkflowActionRegistry } from './check-workflow.js';

/** One finding in a workflow file. */
export interface WorkflowDiagnostic {
  /** 1-based line and column in the file (1:1 when the finding is about the whole document). */
  line: number;
  column: number;
  /** JSON pointer of the member concerned. */
  pointer: string;
  /** The EPS code the finding stands for (SCHEMA_VIOLATION, UNKNOWN_ACTION, ...). */
  code: string;
  message: string;
}

/** A workflow file, read and checked. */
export interface LoadedWorkflow {
  path: string;
  definition: WorkflowDefinition;
  /** Maps a JSON pointer of the definition to its line and column in the file. */
  locate(pointer: string): { line: number; column: number };
}

/** Options of {@link loadWorkflowFile} and {@link loadWorkflowText}. */
export interface LoadWorkflowOptions {
  /** When given, actions, parameters and expressions are checked against it too. */
  registry?: WorkflowActionRegistry;
}

function invalid(path: string, diagnostics: WorkflowDiagnostic[]): RuneError {
  const first = diagnostics[0];
  const where =
    first === undefined ? '' : `: ${path}:${first.line}:${first.column}: ${first.message}`;
  const more = diagnostics.length > 1 ? ` (and ${diagnostics.length - 1} more)` : '';
  return new RuneError('WORKFLOW_INVALID', `workflow is invalid${where}${more}`, {
    source: { component: 'rune-core' },
    details: { file: path, diagnostics: diagnostics.slice(0, 100) },
  });
}

function pointerTokens(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((token) => (/^(0|[1-9][0-9]*)$/.test(token) ? Number(token) : token));
}

/**
 * Parses and checks workflow text. Throws WORKFLOW_INVALID listing every finding with its
 * line:column (`details.diagnostics`), or returns the definition.
 */
export function loadWorkflowText(
  text: string,
  path: string,
  options: LoadWorkflowOptions = {},
): LoadedWorkflow {
  if (Buffer.byteLength(text) > MAX_WORKFLOW_BYTES) {
    throw invalid(path, [
      {
        line: 1,
        column: 1,
        pointer: '',
        code: 'DOCUMENT_TOO_LARGE',
        message: `the file is larger than ${MAX_WORKFLOW_BYTES} bytes`,
      },
    ]);
  }
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const position = (offset: number): { line: number; column: number } => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  if (document.errors.length > 0) {
    throw invalid(
      path,
      document.errors.map((error) => ({
        ...position(error.pos[0]),
        pointer: '',
        code: 'WORKFLOW_INVALID',
        message: `YAML: ${error.message.split('\n')[0] ?? error.message}`,
      })),
    );
  }
  const locate = (pointer: string): { line: number; column: number } => {
    // The deepest node that exists on the pointer's path (a missing member: its parent).
    let node: unknown = document.contents;
    for (const token of pointerTokens(pointer)) {
      let next: unknown;
      if (isMap(node)) {
        const pair = node.items.find(
          (item) =>
            (isScalar(item.key) ? String(item.key.value) : String(item.key)) === String(token),
        );
        next = pair?.value ?? (pair?.key as unknown);
      } else if (isSeq(node) && typeof token === 'number') {
        next = node.items[token];
      }
      if (next === undefined || next === null) break;
      node = next;
    }
    const range = (node as Node | null)?.range;
    return range === undefined || range === null ? { line: 1, column: 1 } : position(range[0]);
  };
  let value: unknown;
  try {
    value = yamlValue(document);
  } catch (error) {
    throw invalid(path, [
      {
        line: 1,
        column: 1,
        pointer: '',
        code: 'WORKFLOW_INVALID',
        message: `YAML: ${error instanceof Error ? error.message : String(error)}`,
      },
    ]);
  }
  const located = (code: string, violations: readonly SchemaViolation[]): WorkflowDiagnostic[] =>
    violations.map((violation) => ({
      ...locate(violation.pointer),
      pointer: violation.pointer,
      code,
      message: `${violation.pointer || '/'}: ${violation.message}`,
    }));
  const parsed = validateWorkflowDefinition(value);
  if (!parsed.ok) {
    const violations = (parsed.error.details?.violations as SchemaViolation[] | undefined) ?? [
      { pointer: '', message: parsed.error.message },
    ];
    throw invalid(path, located(parsed.error.code, violations));
  }
  if (options.registry !== undefined) {
    const findings = checkWorkflow(parsed.value, options.registry);
    if (findings.length > 0) {
      throw invalid(
        path,
        findings.map((finding) => ({
          ...locate(finding.pointer),
          pointer: finding.pointer,
          code: finding.code,
          message: `${finding.pointer}: ${finding.message}`,
        })),
      );
    }
  }
  return { path, definition: parsed.value, locate };
}

/** Reads and checks a workflow file; see {@link loadWorkflowText}. */
export function loadWorkflowFile(path: string, options: LoadWorkflowOptions = {}): LoadedWorkflow {
  let text: string;
  try {
    if (statSync(path).size > MAX_WORKFLOW_BYTES) {
      return loadWorkflowText('x'.repeat(MAX_WORKFLOW_BYTES + 1), path, options);
    }
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof RuneError) throw error;
    throw new RuneError(
      'INVALID_ARGUMENT',
      `cannot read workflow file ${path}: ${String((error as Error).message ?? error)}`,
      {
        source: { component: 'rune-core' },
        cause: error,
      },
    );
  }
  return loadWorkflowText(text, path, options);
}
