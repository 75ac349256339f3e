/**
 * Workflow expressions: CEL (Common Expression Language) through `@marcbachmann/cel-js`.
 *
 * CEL is the choice because it is made for exactly this — conditions and small computations over
 * structured data written by people who are not the ones running them: it has no side effects, no
 * I/O, no loops beyond bounded macros (`all`, `exists`, `map`, `filter` over a finite list), and
 * it is typed, so `inputs.count + "x"` is an error instead of JavaScript's `"3x"`. The evaluator is
 * an interpreter over its own AST: nothing is compiled to JavaScript, nothing reaches `eval` or a
 * shell. Parse-time limits (AST size, depth, literal sizes) bound what one expression may cost.
 *
 * JSON numbers that are integers enter CEL as `int` (BigInt) so that `inputs.lines * 2` is an
 * `int`, and leave it as JSON numbers again; a value with no JSON form (bytes, a duration) is a
 * WORKFLOW_EXPRESSION_ERROR where a step needs JSON.
 */
import { type ASTNode, Environment } from '@marcbachmann/cel-js';
import { RuneError } from '@rune/protocol';

/** The variables every workflow expression sees. */
export const EXPRESSION_VARIABLES = ['inputs', 'steps', 'workflow'] as const;

// Built on first use: loading the CEL library costs start-up time that `rune run` does not need.
let environment: Environment | undefined;
const celEnvironment = (): Environment => {
  environment ??= createEnvironment();
  return environment;
};

const createEnvironment = (): Environment =>
  new Environment({
    unlistedVariablesAreDyn: false,
    homogeneousAggregateLiterals: false,
    limits: {
      maxAstNodes: 2000,
      maxDepth: 64,
      maxListElements: 1000,
      maxMapEntries: 1000,
      maxCallArguments: 16,
    },
  })
    .registerVariable('inputs', 'map')
    .registerVariable('steps', 'map')
    .registerVariable('workflow', 'map');

/** A compiled expression. */
export interface CompiledExpression {
  /** The source text. */
  readonly source: string;
  /** The static result type CEL infers (`bool`, `string`, `list<dyn>`, `dyn`, ...). */
  readonly type: string;
  /** Every `inputs.<name>` and `steps.<id>[.<member>]` it reads, in source order. */
  readonly references: readonly ExpressionReference[];
  /** Evaluates it; throws WORKFLOW_EXPRESSION_ERROR. */
  evaluate(context: ExpressionContext): unknown;
}

/** A reference an expression makes to an input or a step (for validation). */
export interface ExpressionReference {
  root: 'inputs' | 'steps' | 'workflow';
  /** The input name, step id or workflow member; undefined when computed (`steps[x]`). */
  name: string | undefined;
  /** For steps: the member read (`status`, `failed_nodes`, ...), if any. */
  member: string | undefined;
}

/** What expressions see: JSON values (converted to CEL on the way in). */
export interface ExpressionContext {
  inputs: Record<string, unknown>;
  steps: Record<string, unknown>;
  workflow: Record<string, unknown>;
}

function expressionError(source: string, reason: string, cause?: unknown): RuneError {
  return new RuneError(
    'WORKFLOW_EXPRESSION_ERROR',
    `expression "${source.slice(0, 200)}": ${reason.split('\n')[0] ?? reason}`,
    {
      source: { component: 'rune-core' },
      details: { expression: source.slice(0, 1024), reason: reason.slice(0, 2048) },
      ...(cause === undefined ? {} : { cause }),
    },
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Collects `inputs.x` / `steps.x.y` / `workflow.x` chains from a CEL AST. */
function collectReferences(node: unknown, out: ExpressionReference[]): void {
  if (typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) {
    for (const item of node) collectReferences(item, out);
    return;
  }
  const ast = node as ASTNode & { op?: string; args?: unknown };
  if (ast.op === '.' || ast.op === '.?' || ast.op === '[]' || ast.op === '[?]') {
    // Unwind the access chain down to its root identifier.
    const names: (string | undefined)[] = [];
    let current: unknown = ast;
    while (typeof current === 'object' && current !== null) {
      const access = current as { op?: string; args?: unknown };
      if (access.op === 'id') break;
      if (!['.', '.?', '[]', '[?]'].includes(access.op ?? '')) {
        current = undefined;
        break;
      }
      const [target, key] = access.args as [unknown, unknown];
      const isLiteralKey =
        typeof key === 'string' ||
        (typeof key === 'object' &&
          key !== null &&
          (key as { op?: string }).op === 'value' &&
          typeof (key as { args?: unknown }).args === 'string');
      const keyName =
        typeof key === 'string'
          ? key
          : isLiteralKey
            ? ((key as { args: string }).args as string)
            : undefined;
      if (!isLiteralKey) collectReferences(key, out);
      names.unshift(keyName);
      current = target;
    }
    const root = current as { op?: string; args?: unknown } | undefined;
    if (root?.op === 'id' && typeof root.args === 'string') {
      if (root.args === 'inputs' || root.args === 'steps' || root.args === 'workflow') {
        out.push({
          root: root.args,
          name: names[0],
          member: root.args === 'steps' ? names[1] : undefined,
        });
        return;
      }
    } else if (current !== undefined) {
      collectReferences(current, out);
    }
    return;
  }
  if (ast.op === 'id' && typeof ast.args === 'string') {
    const root = ast.args;
    if (root === 'inputs' || root === 'steps' || root === 'workflow') {
      out.push({ root, name: undefined, member: undefined });
    }
    return;
  }
  collectReferences(ast.args, out);
}

/** A JSON value as CEL sees it: integers become `int` (BigInt). */
export function toCelValue(value: unknown): unknown {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (Array.isArray(value)) return value.map(toCelValue);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, toCelValue(item)]));
  }
  return value;
}

/** A CEL value as JSON; throws a plain Error for values without a JSON form. */
export function fromCelValue(value: unknown): unknown {
  if (typeof value === 'bigint') {
    const number = Number(value);
    if (!Number.isSafeInteger(number))
      throw new Error(`integer ${value} is out of JSON's safe range`);
    return number;
  }
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`${value} has no JSON form`);
    return value;
  }
  if (Array.isArray(value)) return value.map(fromCelValue);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Map) {
    return Object.fromEntries(
      [...value.entries()].map(([key, item]) => [String(key), fromCelValue(item)]),
    );
  }
  if (value instanceof Uint8Array) throw new Error('bytes have no JSON form');
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([key, item]) => [
        key,
        fromCelValue(item),
      ]),
    );
  }
  throw new Error(
    `a ${typeof value === 'object' ? (value.constructor?.name ?? 'value') : typeof value} has no JSON form`,
  );
}

/**
 * Compiles (parses and type-checks) an expression. Throws WORKFLOW_EXPRESSION_ERROR for a syntax
 * error, an unknown variable or a type error CEL can see without data.
 */
export function compileExpression(source: string): CompiledExpression {
  let parsed: ReturnType<Environment['parse']>;
  try {
    parsed = celEnvironment().parse(source);
  } catch (error) {
    throw expressionError(source, messageOf(error), error);
  }
  const checked = parsed.check();
  if (!checked.valid) throw expressionError(source, messageOf(checked.error), checked.error);
  const references: ExpressionReference[] = [];
  collectReferences(parsed.ast, references);
  return {
    source,
    type: String(checked.type),
    references,
    evaluate(context) {
      let value: unknown;
      try {
        value = parsed({
          inputs: toCelValue(context.inputs),
          steps: toCelValue(context.steps),
          workflow: toCelValue(context.workflow),
        });
      } catch (error) {
        throw expressionError(source, messageOf(error), error);
      }
      try {
        return fromCelValue(value);
      } catch (error) {
        throw expressionError(source, messageOf(error), error);
      }
    },
  };
}

/** Evaluates a condition; a value that is not a boolean is a WORKFLOW_EXPRESSION_ERROR. */
export function evaluateCondition(
  expression: CompiledExpression,
  context: ExpressionContext,
): boolean {
  const value = expression.evaluate(context);
  if (typeof value !== 'boolean') {
    throw expressionError(
      expression.source,
      `a condition must be a bool, got ${value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value}`,
    );
  }
  return value;
}
