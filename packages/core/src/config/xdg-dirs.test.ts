import { describe, expect, it } from 'vitest';
import {
  defaultAuditKeyFile,
  defaultAuditLogPath,
  resolveXdgDirs,
  runeStateDir,
} from './xdg-dirs.js';

describe('XDG dirs', () => {
  it('puts RUNE state under $XDG_STATE_HOME/rune, else ~/.local/state/rune', () => {
    const set = resolveXdgDirs({
      env: { XDG_STATE_HOME: '/s', XDG_CONFIG_HOME: '/c' },
      home: '/h',
    });
    expect(runeStateDir(set)).toBe('/s/rune');
    expect(defaultAuditLogPath(set)).toBe('/s/rune/audit.jsonl');
    expect(defaultAuditKeyFile(set)).toBe('/c/rune/audit-key.pem');
    // Unset, empty or relative variables fall back to the default (XDG says: ignore relative).
    for (const value of [undefined, '', 'relative/state']) {
      const dirs = resolveXdgDirs({ env: { XDG_STATE_HOME: value }, home: '/h' });
      expect(runeStateDir(dirs)).toBe('/h/.local/state/rune');
    }
  });
});
