#!/usr/bin/env node
/**
 * Writes the error-category table of plugins/lib/bpcs.sh from the EPS catalog:
 * `node bpcs-categories.mjs` (after `@rune/protocol` is built), `--check` to only compare.
 *
 * The table used to be a hand copy of `ERROR_CATALOG` (packages/protocol/src/eps/v1/catalog.ts)
 * and drifted from it. It stays a checked-in block of bpcs.sh, not a build step, so the library
 * keeps working when sourced straight from a checkout; plugins/test/bpcs-categories.test.ts fails
 * with the regeneration command when the block and the catalog disagree.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The library holding the generated block. */
export const BPCS_LIB_FILE = join(here, 'lib', 'bpcs.sh');
/** The command that regenerates the block, for messages. */
export const REGENERATE_COMMAND = 'node plugins/bpcs-categories.mjs';
const BEGIN = '# --- begin generated: error categories';
const END = '# --- end generated: error categories ---';
const CODE = /^[A-Z][A-Z0-9_]*$/;
const CATEGORY = /^[a-z]+$/;

/**
 * The generated `_bpcs_category` function (with its begin/end markers) for `catalog`: one table
 * string, one line per code, searched with a pattern removal (Bash parses a `case` of some 120
 * branches several times slower than one quoted string, and every failure loads this function).
 */
export function renderCategoryBlock(catalog) {
  const lines = [
    `${BEGIN} (from packages/protocol/src/eps/v1/catalog.ts; run \`${REGENERATE_COMMAND}\`) ---`,
    '# _bpcs_category CODE — sets REPLY to the EPS category of CODE. A code outside the catalog (a',
    "# plugin's own) is the plugin's failure: category plugin.",
    '_bpcs_category() { # @rune-cold: failures',
    "  local rest table='",
  ];
  for (const [code, entry] of Object.entries(catalog)) {
    if (!CODE.test(code) || !CATEGORY.test(entry.category)) {
      throw new Error(`unexpected catalog entry ${JSON.stringify(code)}: ${entry.category}`);
    }
    lines.push(`${code}=${entry.category}`);
  }
  lines.push(
    "'",
    '  # The line that starts with CODE= (the code quoted: matched as text, never as a pattern).',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Bash text, not JS
    '  rest=${table#*$\'\\n\'"$1"=}',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Bash text, not JS
    '  if [[ $rest == "$table" ]]; then REPLY=plugin; else REPLY=${rest%%$\'\\n\'*}; fi',
    '}',
    END,
  );
  return lines.join('\n');
}

/** `text` (bpcs.sh) with its generated block replaced by `block`; throws when the markers are missing. */
export function replaceCategoryBlock(text, block) {
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start === -1 || end === -1 || end < start) {
    throw new Error(`${BPCS_LIB_FILE}: the generated error-category block markers are missing`);
  }
  return `${text.slice(0, start)}${block}${text.slice(end + END.length)}`;
}

async function main() {
  const check = process.argv.includes('--check');
  const { ERROR_CATALOG } = await import('@rune/protocol');
  const current = readFileSync(BPCS_LIB_FILE, 'utf8');
  const wanted = replaceCategoryBlock(current, renderCategoryBlock(ERROR_CATALOG));
  if (wanted === current) {
    console.log('plugins/lib/bpcs.sh: error categories are up to date');
    return;
  }
  if (check) {
    console.error(
      `plugins/lib/bpcs.sh: error categories are out of date (run: ${REGENERATE_COMMAND})`,
    );
    process.exitCode = 1;
    return;
  }
  writeFileSync(BPCS_LIB_FILE, wanted);
  console.log('plugins/lib/bpcs.sh: error categories regenerated');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
