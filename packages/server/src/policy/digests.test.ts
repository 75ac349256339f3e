/**
 * The digests stored in users' databases: an approval's binding digest (`approval_requests`) and
 * an idempotency key's body hash. Their values are pinned: a held run approved before an upgrade
 * must still match its binding after it, and a retried request must still find its run.
 */
import type { ExecutionPlan } from '@rune/core';
import { describe, expect, it } from 'vitest';
import { bodyHash } from '../runs/run-manager.js';
import { bindingOf } from './approvals.js';

describe('stored digests', () => {
  it('the binding of a plan and its digest: canonical JSON, keys sorted at every depth', () => {
    const plan = {
      action: 'restart-docker',
      plugin: { sha256: 'a'.repeat(64) },
      nodes: [{ target: { name: 'web1' } }, { target: { name: 'web2' } }],
      parameters: { service: 'nginx', options: { z: [1, { b: 2, a: 1 }], a: null } },
    } as unknown as ExecutionPlan;
    const { binding, sha256 } = bindingOf(plan);
    expect(binding).toEqual({
      action: 'restart-docker',
      plugin_sha256: 'a'.repeat(64),
      nodes: ['web1', 'web2'],
      params_sha256: '833d4398aa691f41435eb57c2b4622a9feac533eb4523ac9a17acc62a480dcf8',
    });
    expect(sha256).toBe('68424f8e6bdca2d4feb07ef6aac3dd5cc76bcf549f91a207616a31954175ef6c');
    const reordered = {
      ...plan,
      parameters: { options: { a: null, z: [1, { a: 1, b: 2 }] }, service: 'nginx' },
    } as unknown as ExecutionPlan;
    expect(bindingOf(reordered).sha256).toBe(sha256);
  });

  it('the body hash of an idempotent request ignores key order, not array order', () => {
    const body = { targets: ['b', 'a'], action: 'noop', options: { dry_run: true, timeout: '5s' } };
    expect(bodyHash(body)).toBe('e052e6dcd8f208fdf28c87b16b8b123bd6eba1cfb5c33f40c98c820dc4eb5ee5');
    expect(
      bodyHash({ options: { timeout: '5s', dry_run: true }, action: 'noop', targets: ['b', 'a'] }),
    ).toBe(bodyHash(body));
    expect(bodyHash({ ...body, targets: ['a', 'b'] })).not.toBe(bodyHash(body));
  });
});
