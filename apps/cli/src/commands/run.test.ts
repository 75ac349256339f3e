import { describe, expect, it } from 'vitest';
import { planRequestFromArgs } from './run.js';

describe('rune run: flags -> PlanRequest', () => {
  it('passes every flag through as typed; core parses and validates', () => {
    expect(
      planRequestFromArgs({
        action: 'noop',
        node: ['web1,web2', '@db'],
        param: ['a=1', 2],
        params: '@p.json',
        dryRun: true,
        transport: 'ssm',
        useSsm: true,
        timeout: '30s',
        concurrency: 5,
        inventory: 'fleet.yaml',
        nodesFile: '-',
        canary: 1,
        maxFailures: '10%',
        deadline: '5m',
        yes: true,
      }),
    ).toEqual({
      action: 'noop',
      selections: ['web1,web2', '@db'],
      nodeLists: ['-'],
      inventory: 'fleet.yaml',
      paramArgs: ['a=1', '2'],
      paramsSource: '@p.json',
      transport: 'ssm',
      useSsm: true,
      timeout: '30s',
      concurrency: '5',
      policy: { canary: '1', maxFailures: '10%', deadline: '5m' },
      dryRun: true,
      confirmDangerous: true,
    });
  });

  it('leaves out what was not given', () => {
    expect(planRequestFromArgs({ action: 'noop' })).toEqual({
      action: 'noop',
      selections: [],
      paramArgs: [],
      policy: {},
      dryRun: false,
      confirmDangerous: false,
    });
  });
});
