import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openRunStore } from '../store/run-store.js';
import type { AlertsTable } from '../store/schema.js';
import {
  findEpisode,
  insertAlerts,
  listAlerts,
  pruneAlertsBefore,
  UNDECIDED_ALERT,
} from './alert-store.js';

const dir = mkdtempSync(join(tmpdir(), 'rune-alert-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const row = (id: string, receivedAt: string, outcome: string): AlertsTable => ({
  id,
  received_at: receivedAt,
  receiver: 'am',
  kind: 'alertmanager',
  status: 'firing',
  fingerprint: 'f',
  starts_at: '2026-01-01T00:00:00.000Z',
  closed: 0,
  alertname: 'A',
  labels_json: '{}',
  annotations_json: '{}',
  ...UNDECIDED_ALERT,
  outcome,
});

describe('the alerts table', () => {
  it('prunes decided alerts older than the retention, keeps waiting ones; finds open episodes', async () => {
    const store = await openRunStore(join(dir, 'store.sqlite'));
    try {
      await insertAlerts(store.db, [
        row('00000000-0000-4000-8000-000000000001', '2026-01-01T00:00:00.000Z', 'ran'),
        row('00000000-0000-4000-8000-000000000002', '2026-01-01T00:00:00.000Z', 'held'),
        row('00000000-0000-4000-8000-000000000003', '2026-01-01T00:00:00.000Z', 'pending'),
        row('00000000-0000-4000-8000-000000000004', '2026-03-01T00:00:00.000Z', 'throttled'),
      ]);
      expect(
        (await findEpisode(store.db, 'am', 'f', '2026-01-01T00:00:00.000Z', 'firing', 'x'))?.id,
      ).toBe('00000000-0000-4000-8000-000000000001');
      expect(await pruneAlertsBefore(store.db, '2026-02-01T00:00:00.000Z')).toBe(1);
      const left = (await listAlerts(store.db, {}, 10)).map((alert) => alert.outcome).sort();
      expect(left).toEqual(['held', 'pending', 'throttled']);
    } finally {
      await store.close();
    }
  });
});
