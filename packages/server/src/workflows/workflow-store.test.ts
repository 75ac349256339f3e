import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowRunRecord } from '@rune/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { newRun } from '../../test/store-rows.js';
import { openRunStore } from '../store/run-store.js';
import { getWorkflowRun, interruptRunningWorkflows, saveWorkflowRun } from './workflow-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const TRACE = 'c'.repeat(32);
const record = (id: string, status: string): WorkflowRunRecord =>
  ({
    schema_version: 'rune-workflow-run/v1',
    workflow_run_id: id,
    workflow: 'two-notes',
    trace_id: TRACE,
    status,
    started_at: '2026-12-01T10:00:00.000Z',
    steps: [],
  }) as unknown as WorkflowRunRecord;

describe('interrupting a stopped workflow', () => {
  it("touches only its own runs, not another workflow's runs in the same trace", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rune-workflow-store-'));
    dirs.push(dir);
    const store = await openRunStore(join(dir, 'server.sqlite'));
    try {
      // Two workflows in one trace (one caller's traceparent, or one webhook's alerts): the one
      // that was running when the server stopped, and one that is still waiting elsewhere.
      await saveWorkflowRun(store.db, record('wf-stopped', 'running'), 'token:ops', new Date());
      await saveWorkflowRun(store.db, record('wf-other', 'succeeded'), 'token:ops', new Date());
      for (const [id, workflowRunId] of [
        ['own-held', 'wf-stopped'],
        ['other-held', 'wf-other'],
      ] as const) {
        await store.insertRun(
          newRun(id, {
            trace_id: TRACE,
            source: 'workflow',
            status: 'awaiting_approval',
            workflow_run_id: workflowRunId,
          }),
          ['web1'],
        );
      }
      const cancelled: string[] = [];
      const count = await interruptRunningWorkflows(store.db, new Date(), async (runId) => {
        cancelled.push(runId);
      });
      expect(count).toBe(1);
      expect(cancelled).toEqual(['own-held']);
      expect((await getWorkflowRun(store.db, 'wf-stopped'))?.status).toBe('interrupted');
      expect((await getWorkflowRun(store.db, 'wf-other'))?.status).toBe('succeeded');
    } finally {
      await store.close();
    }
  });
});
