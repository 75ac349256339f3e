/**
 * The alert intake (`<store>.alert-intake`): the store's intake (store/intake.ts) holding the
 * alerts of webhooks, so a receiver answers after one write and one `fdatasync` instead of after
 * the SQLite worker's group COMMIT. The engine appends once per turn of the event loop, with every
 * webhook of that turn.
 */
import { type Intake, openIntake } from '../store/intake.js';
import type { AlertsTable } from '../store/schema.js';

export { INTAKE_BYTES } from '../store/intake.js';

/** The alert intake of one store. */
export type AlertIntake = Intake<AlertsTable>;

/** Opens (creating) the alert intake `path`; INVALID_CONFIG when it is not an alert intake file. */
export function openAlertIntake(path: string): AlertIntake {
  return openIntake<AlertsTable>({ magic: 'RUNE-ALERT-INTAKE v1', noun: 'alert' }, path);
}
