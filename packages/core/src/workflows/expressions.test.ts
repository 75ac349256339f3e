import { describe, expect, it } from 'vitest';
import { compileExpression, evaluateCondition, fromCelValue, toCelValue } from './expressions.js';

const context = {
  inputs: { nodes: ['web01', 'web02'], count: 3, ratio: 0.5 },
  steps: { restart: { status: 'partial', failed_nodes: ['web02'] } },
  workflow: { name: 'flow' },
};

describe('workflow expressions (CEL)', () => {
  it('keep JSON integers integers, both ways', () => {
    expect(compileExpression('inputs.count * 2').evaluate(context)).toBe(6);
    expect(compileExpression('inputs.ratio * 2.0').evaluate(context)).toBe(1);
    expect(toCelValue({ a: [1, 1.5] })).toEqual({ a: [1n, 1.5] });
    expect(fromCelValue({ a: [1n, 'x', null] })).toEqual({ a: [1, 'x', null] });
  });

  it('compute lists and conditions over step results', () => {
    expect(
      compileExpression('inputs.nodes.filter(n, !(n in steps.restart.failed_nodes))').evaluate(
        context,
      ),
    ).toEqual(['web01']);
    expect(evaluateCondition(compileExpression('steps.restart.status != "failed"'), context)).toBe(
      true,
    );
  });

  it('list what they read', () => {
    expect(
      compileExpression('steps.a.status == "x" && inputs.b && workflow.name != ""').references,
    ).toEqual([
      { root: 'steps', name: 'a', member: 'status' },
      { root: 'inputs', name: 'b', member: undefined },
      { root: 'workflow', name: 'name', member: undefined },
    ]);
  });

  it.each([
    ['an unknown variable', 'process.exit(1)'],
    ['a syntax error', 'inputs.count +'],
    ['no function calls outside CEL', 'require("child_process")'],
    ['bounded depth', `${'('.repeat(100)}1${')'.repeat(100)}`],
  ])('refuse %s at compile time', (_name, source) => {
    expect(() => compileExpression(source)).toThrow(
      expect.objectContaining({ code: 'WORKFLOW_EXPRESSION_ERROR' }),
    );
  });

  it.each([
    ['a wrong type', 'inputs.count + "x"'],
    ['a missing key', 'inputs.missing'],
    ['a value without JSON form', 'duration("1s")'],
  ])('fail with WORKFLOW_EXPRESSION_ERROR at run time: %s', (_name, source) => {
    expect(() => compileExpression(source).evaluate(context)).toThrow(
      expect.objectContaining({ code: 'WORKFLOW_EXPRESSION_ERROR' }),
    );
  });

  it('refuse a condition that is not a bool', () => {
    expect(() => evaluateCondition(compileExpression('inputs.count'), context)).toThrow(
      expect.objectContaining({ code: 'WORKFLOW_EXPRESSION_ERROR' }),
    );
  });
});
