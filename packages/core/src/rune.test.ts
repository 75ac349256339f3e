import type { RunSummary } from '@rune/protocol';
import { describe, expect, it } from 'vitest';
import { runStatus } from './rune.js';

const summary = (counts: Partial<RunSummary>): RunSummary => ({
  trace_id: '0af7651916cd43dd8448eb211c80319c',
  action: 'noop',
  total: 2,
  succeeded: 0,
  partial: 0,
  failed: 0,
  skipped: 0,
  duration_ms: 1,
  exit_code: 0,
  ...counts,
});

describe('runStatus (specs/run-v1.md, "Run status")', () => {
  it('maps a finished run to its terminal status', () => {
    expect(runStatus(summary({ succeeded: 1, partial: 1 }), false)).toBe('succeeded');
    // Cancelled after every node had finished: nothing was cancelled.
    expect(runStatus(summary({ succeeded: 2 }), true)).toBe('succeeded');
    expect(runStatus(summary({ failed: 1, skipped: 1, exit_code: 130 }), true)).toBe('cancelled');
    expect(runStatus(summary({ failed: 2, exit_code: 1 }), false)).toBe('failed');
    expect(runStatus(summary({ succeeded: 1, skipped: 1, exit_code: 4 }), false)).toBe('partial');
    // Every node succeeded but an outcome record could not be written (exit code 70).
    expect(runStatus(summary({ succeeded: 2, exit_code: 70 }), false)).toBe('interrupted');
  });
});
