/**
 * Default locations of the audit trail, derived from the one XDG helper of `@rune/transport`.
 */
import { join } from 'node:path';
import { runeStateDir, type XdgDirs } from '@rune/transport';

export {
  type EnvironmentOptions,
  expandLocalPath,
  resolveXdgDirs,
  runeStateDir,
  type XdgDirs,
} from '@rune/transport';

/** The default `[core] audit_log`: `$XDG_STATE_HOME/rune/audit.jsonl`. */
export function defaultAuditLogPath(dirs: Pick<XdgDirs, 'stateHome'>): string {
  return join(runeStateDir(dirs), 'audit.jsonl');
}

/** The default `[audit] key_file`: `$XDG_CONFIG_HOME/rune/audit-key.pem`. */
export function defaultAuditKeyFile(dirs: Pick<XdgDirs, 'configHome'>): string {
  return join(dirs.configHome, 'rune', 'audit-key.pem');
}
