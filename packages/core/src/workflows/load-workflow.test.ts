import { RuneError } from '@rune/protocol';
import { describe, expect, it } from 'vitest';
import { builtinPluginDir, discoverPlugins } from '../plugins/plugin-registry.js';
import { loadWorkflowText, type WorkflowDiagnostic } from './load-workflow.js';

const registry = discoverPlugins({ sources: [{ kind: 'builtin', dir: builtinPluginDir() }] });

/** The diagnostics of a refused workflow as "line:column code message" strings. */
function diagnostics(text: string): string[] {
  try {
    loadWorkflowText(text, 'flow.yaml', { registry });
  } catch (error) {
    if (!RuneError.is(error)) throw error;
    expect(error.code).toBe('WORKFLOW_INVALID');
    const found = (error.details?.diagnostics ?? []) as WorkflowDiagnostic[];
    return found.map((entry) => `${entry.line}:${entry.column} ${entry.code} ${entry.message}`);
  }
  throw new Error('expected WORKFLOW_INVALID');
}

const head = 'schema_version: workflow_v1\nname: flow\n';

describe('rune workflow validate findings, with line:column', () => {
  it('accepts a good workflow', () => {
    const loaded = loadWorkflowText(
      `${head}inputs:\n  nodes: { type: array, required: true }\nsteps:\n  - id: restart\n    action: restart-docker\n    nodes: \${{ inputs.nodes }}\n    on_failure: continue\n  - id: logs\n    action: gather-logs\n    failed_in: restart\n    when: steps.restart.failed_nodes.size() > 0\n    params: { lines: 50 }\n`,
      'flow.yaml',
      { registry },
    );
    expect(loaded.definition.steps).toHaveLength(2);
    expect(loaded.locate('/steps/1/params/lines')).toEqual({ line: 14, column: 22 });
  });

  it('YAML syntax errors', () => {
    expect(diagnostics(`${head}steps: [\n`)[0]).toMatch(/^4:1 WORKFLOW_INVALID YAML: /);
  });

  it('an unknown action', () => {
    expect(
      diagnostics(`${head}steps:\n  - id: a\n    action: restart-dokcer\n    nodes: web01\n`),
    ).toEqual([expect.stringMatching(/^5:13 UNKNOWN_ACTION \/steps\/0\/action: .*restart-docker/)]);
  });

  it('parameters that do not fit the manifest', () => {
    const found = diagnostics(
      `${head}steps:\n  - id: a\n    action: gather-logs\n    nodes: web01\n    params:\n      lines: 0\n      colour: red\n`,
    );
    expect(found).toEqual([
      expect.stringMatching(
        /^8:14 INVALID_PARAMETERS \/steps\/0\/params\/lines: gather-logs.lines: /,
      ),
      expect.stringMatching(/^9:15 INVALID_PARAMETERS .*no parameter "colour"/),
    ]);
  });

  it('references to undefined inputs, steps and members, and steps that run later', () => {
    const found = diagnostics(
      `${head}steps:\n  - id: a\n    action: noop\n    nodes: \${{ inputs.missing }}\n    when: steps.b.status == "failed"\n  - id: b\n    action: noop\n    nodes: web01\n    when: steps.a.colour == "red"\noutputs:\n  x: steps.nope.status\n`,
    );
    expect(found).toEqual([
      '7:11 WORKFLOW_INVALID /steps/0/when: steps.b: this step never runs before the one that reads it',
      '6:12 WORKFLOW_INVALID /steps/0/nodes: inputs.missing is not a declared input',
      expect.stringMatching(
        /^11:11 WORKFLOW_INVALID \/steps\/1\/when: steps\.a\.colour is not a step result member/,
      ),
      '13:6 WORKFLOW_INVALID /outputs/x: steps.nope: no such step',
    ]);
  });

  it('goto cycles', () => {
    expect(
      diagnostics(
        `${head}steps:\n  - id: a\n    action: noop\n    nodes: web01\n    on_failure: a\n`,
      ),
    ).toEqual([
      expect.stringMatching(
        /^7:17 SCHEMA_VIOLATION \/steps\/0\/on_failure: goto "a" forms a cycle/,
      ),
    ]);
  });

  it('unreachable steps', () => {
    expect(
      diagnostics(
        `${head}steps:\n  - id: a\n    action: noop\n    nodes: web01\n    next: end\n  - id: b\n    action: noop\n    nodes: web01\n`,
      ),
    ).toEqual([expect.stringMatching(/^8:5 SCHEMA_VIOLATION \/steps\/1: step "b" is unreachable/)]);
  });

  it('expressions that do not compile', () => {
    expect(
      diagnostics(`${head}steps:\n  - id: a\n    action: noop\n    nodes: web01\n    when: 1 +\n`),
    ).toEqual([
      expect.stringMatching(/^7:11 WORKFLOW_EXPRESSION_ERROR \/steps\/0\/when: expression "1 \+"/),
    ]);
  });

  it('a condition whose type is not bool', () => {
    expect(
      diagnostics(
        `${head}steps:\n  - id: a\n    action: noop\n    nodes: web01\n    when: '"yes"'\n`,
      ),
    ).toEqual(['7:11 WORKFLOW_INVALID /steps/0/when: a condition must be a bool, this is string']);
  });
});
