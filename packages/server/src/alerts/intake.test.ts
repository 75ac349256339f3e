import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AlertsTable } from '../store/schema.js';
import { UNDECIDED_ALERT } from './alert-store.js';
import { INTAKE_BYTES, openAlertIntake } from './intake.js';

const dir = mkdtempSync(join(tmpdir(), 'rune-alert-intake-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const row = (fingerprint: string): AlertsTable => ({
  id: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
  received_at: '2026-12-02T00:00:00.000Z',
  receiver: 'am',
  kind: 'alertmanager',
  status: 'firing',
  fingerprint,
  starts_at: '2026-12-02T00:00:00.000Z',
  closed: 0,
  alertname: 'A',
  labels_json: '{"x":"$(rm -rf /)\\n"}',
  annotations_json: '{}',
  ...UNDECIDED_ALERT,
});

describe('the alert intake', () => {
  it('is preallocated; what was appended and not stored is replayed by the next process', () => {
    const path = join(dir, 'replay.alert-intake');
    const first = openAlertIntake(path);
    expect(statSync(path).size).toBe(INTAKE_BYTES);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const a = [row('a'), row('b')];
    const b = [row('c')];
    expect(first.append(a)).toBe(true);
    expect(first.append(b)).toBe(true);
    expect(first.owed).toBe(3);
    // The size never changes: a write into allocated space (its fdatasync syncs no metadata).
    expect(statSync(path).size).toBe(INTAKE_BYTES);
    first.close();
    const second = openAlertIntake(path);
    expect(second.replay()).toEqual([...a, ...b]);
    expect(second.owed).toBe(3);
    second.close();
  });

  it('starts over only when nothing is owed: stored rows are never read again', () => {
    const path = join(dir, 'reset.alert-intake');
    const intake = openAlertIntake(path);
    intake.append([row('a')]);
    intake.checkpoint();
    // Owed: a checkpoint keeps it.
    expect(intake.replay()).toHaveLength(1);
    intake.stored(1);
    intake.checkpoint();
    expect(intake.replay()).toEqual([]);
    // Lazily too: the next append after everything was stored starts a new epoch.
    intake.append([row('b'), row('c'), row('d')]);
    intake.stored(3);
    const e = row('e');
    expect(intake.append([e, row('f')])).toBe(true);
    intake.close();
    const again = openAlertIntake(path);
    expect(again.replay().map((r) => r.fingerprint)).toEqual(['e', 'f']);
    expect(
      readFileSync(path, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"e"')).length,
    ).toBe(1);
    again.close();
  });

  it('a torn last write is not read; a full file refuses (the caller waits for the store)', () => {
    const path = join(dir, 'torn.alert-intake');
    const intake = openAlertIntake(path);
    const kept = row('a');
    intake.append([kept]);
    intake.append([row('b')]);
    intake.close();
    // Damage the second line as a crash in the middle of its write would.
    const text = readFileSync(path, 'latin1');
    const second = text.indexOf('\n', text.indexOf('\n', 64) + 1) - 10;
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('\0\0\0\0'), 0, 4, second);
    closeSync(fd);
    const reopened = openAlertIntake(path);
    expect(reopened.replay()).toEqual([kept]);
    const big = Array.from({ length: 4000 }, () => row('x'));
    let appended = 0;
    while (reopened.append(big)) appended++;
    expect(appended).toBeGreaterThan(0);
    expect(reopened.append(big)).toBe(false);
    expect(reopened.replay()).toHaveLength(1 + appended * big.length);
    reopened.close();
  });

  it('a file that is not an intake is refused, never overwritten', () => {
    const path = join(dir, 'foreign.alert-intake');
    const fd = openSync(path, 'w');
    writeSync(fd, 'not an intake\n');
    closeSync(fd);
    expect(() => openAlertIntake(path)).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG' }),
    );
    expect(readFileSync(path, 'utf8')).toBe('not an intake\n');
  });
});
