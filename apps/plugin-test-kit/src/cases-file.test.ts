import { describe, expect, it } from 'vitest';
import { parseCasesFile } from './cases-file.js';

describe('parseCasesFile', () => {
  it('accepts a complete cases file', () => {
    const parsed = parseCasesFile(`
mutating:
  - { command: systemctl, args: "^restart" }
shims:
  systemctl:
    - args: "^is-active"
      stdout: "active\\n"
    - sequence: [{ exit_code: 1 }, { exit_code: 0 }]
cases:
  - name: ok
    parameters: { service: docker }
    env: { LANG: C }
    expect: { exit_code: 0, result: success, output_data: { /a: { $gte: 1 } }, calls: ["^systemctl"] }
`);
    expect(parsed.ok).toBe(true);
  });
  it('rejects unknown keys, wrong types and bad regular expressions with the location', () => {
    const unknown = parseCasesFile('cases: [{ name: x, expect: { exitcode: 0 } }]');
    expect(unknown.ok).toBe(false);
    if (!unknown.ok) expect(unknown.error.code).toBe('SCHEMA_VIOLATION');
    const regex = parseCasesFile('shims: { docker: { args: "([" } }');
    expect(regex.ok).toBe(false);
    if (!regex.ok)
      expect(regex.error.message).toMatch(/shims.docker.args is not a valid regular expression/);
    const yaml = parseCasesFile('cases: [');
    expect(yaml.ok).toBe(false);
    if (!yaml.ok) expect(yaml.error.message).toMatch(/not valid YAML/);
  });
});
