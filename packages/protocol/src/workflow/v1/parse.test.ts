import { describe, expect, it } from 'vitest';
import {
  computedExpression,
  validateWorkflowDefinition,
  workflowDominators,
  workflowEdges,
  workflowPredecessors,
} from './parse.js';
import type { WorkflowDefinition } from './schema.js';

const step = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  action: 'noop',
  nodes: 'localhost',
  ...extra,
});
const workflow = (steps: unknown[]): unknown => ({
  schema_version: 'workflow_v1',
  name: 'graph',
  steps,
});
const parsed = (steps: unknown[]): WorkflowDefinition => {
  const result = validateWorkflowDefinition(workflow(steps));
  if (!result.ok) throw result.error;
  return result.value;
};

describe('computed values', () => {
  it('are whole-string ${{ }} only', () => {
    expect(computedExpression('${{ inputs.nodes }}')).toBe('inputs.nodes');
    expect(computedExpression('  ${{a + b}} ')).toBe('a + b');
    expect(computedExpression('web01')).toBeUndefined();
    expect(computedExpression('${{ }}')).toBeUndefined();
  });
});

describe('the workflow graph', () => {
  const graph = parsed([
    step('a', { on_failure: 'c' }),
    step('b', { next: 'd' }),
    step('c', { on_failure: 'continue' }),
    step('d'),
  ]);

  it('has success and failure edges', () => {
    expect(workflowEdges(graph, 0)).toEqual({ success: 1, failure: 2 });
    expect(workflowEdges(graph, 1)).toEqual({ success: 3, failure: -1 });
    expect(workflowEdges(graph, 2)).toEqual({ success: 3, failure: 3 });
    expect(workflowEdges(graph, 3)).toEqual({ success: -1, failure: -1 });
  });

  it('knows which steps always run before, and which may', () => {
    const dominators = workflowDominators(graph).map((set) => [...set].sort());
    expect(dominators).toEqual([[], [0], [0], [0]]);
    const before = workflowPredecessors(graph).map((set) => [...set].sort());
    expect(before).toEqual([[], [0], [0], [0, 1, 2]]);
  });

  it('refuses a step that jumps back to itself as a cycle', () => {
    const result = validateWorkflowDefinition(workflow([step('a', { on_failure: 'a' })]));
    expect(result.ok ? 'ok' : result.error.code).toBe('SCHEMA_VIOLATION');
    expect(result.ok ? [] : result.error.details?.violations).toEqual([
      expect.objectContaining({ pointer: '/steps/0/on_failure' }),
    ]);
  });
});
