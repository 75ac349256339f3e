/**
 * The error-category table of the BPCS library is generated from the EPS catalog: the checked-in
 * block must match the catalog, and real Bash must answer the catalog's category for every code.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ERROR_CATALOG, ERROR_CODES } from '@rune/protocol';
import { describe, expect, it } from 'vitest';
import {
  BPCS_LIB_FILE,
  REGENERATE_COMMAND,
  renderCategoryBlock,
  replaceCategoryBlock,
} from '../bpcs-categories.mjs';
import { BASH } from './harness.js';

describe('BPCS error categories', () => {
  it('the generated block in lib/bpcs.sh matches the EPS catalog', () => {
    const text = readFileSync(BPCS_LIB_FILE, 'utf8');
    const wanted = replaceCategoryBlock(text, renderCategoryBlock(ERROR_CATALOG));
    expect(text === wanted, `lib/bpcs.sh is out of date; run: ${REGENERATE_COMMAND}`).toBe(true);
  });

  it('_bpcs_category returns the catalog category of every code (real bash)', () => {
    // One bash for all codes; the result lines go to fd 3 (the library's stdout), then the
    // library's exit trap is disarmed so it prints no failure document.
    const script = [
      'source "$1"',
      'shift',
      'for code in "$@"; do _bpcs_category "$code"; printf "%s %s\\n" "$code" "$REPLY" >&3; done',
      'trap - EXIT',
      'exit 0',
    ].join('\n');
    const codes = [...ERROR_CODES, 'MY_PLUGIN_OWN_CODE'];
    const run = spawnSync(BASH, ['-c', script, 'bash', BPCS_LIB_FILE, ...codes], {
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).toBe(0);
    const answered = Object.fromEntries(
      run.stdout
        .trim()
        .split('\n')
        .map((line) => line.split(' ') as [string, string]),
    );
    const expected: Record<string, string> = { MY_PLUGIN_OWN_CODE: 'plugin' };
    for (const code of ERROR_CODES) expected[code] = ERROR_CATALOG[code].category;
    expect(answered).toEqual(expected);
  });

  it('refuses a catalog entry that is not a plain shell word', () => {
    expect(() => renderCategoryBlock({ 'A) rm -rf /; B': { category: 'plugin' } })).toThrow();
    expect(() => renderCategoryBlock({ A: { category: '$(id)' } })).toThrow();
  });
});
