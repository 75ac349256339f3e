import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from './eps/v1/catalog.js';
import { RcsRequestSchema } from './rcs/v1/schema.js';
import { RunResultDocumentSchema } from './run/v1/schema.js';
import {
  buildSpecSections,
  normalizeMarkdownTables,
  renderErrorCatalogTable,
  renderFieldTable,
  replaceGeneratedSections,
} from './spec-sections.js';

const specsDir = new URL('../../../specs/', import.meta.url);
const REGENERATE =
  'run `cd packages/protocol && npm run generate:schemas` (or `npx -y pnpm@10.34.9 --filter @rune/protocol generate:schemas` from the repository root) and commit the result';
const specFiles = readdirSync(specsDir).filter((name) => name.endsWith('.md'));

describe('generated sections of specs/*.md', () => {
  const sections = buildSpecSections();

  it.each(specFiles)('specs/%s is up to date', (file) => {
    const text = readFileSync(new URL(file, specsDir), 'utf8');
    const result = replaceGeneratedSections(text, sections);
    expect(result.unknown, `unknown generated sections in specs/${file}`).toEqual([]);
    // Compared by content: Biome aligns the tables of committed Markdown.
    expect(
      normalizeMarkdownTables(result.text) === normalizeMarkdownTables(text),
      `specs/${file} has drifted from the TypeBox sources: ${REGENERATE}`,
    ).toBe(true);
  });

  it('places every section exactly once', () => {
    const found = specFiles.flatMap(
      (file) =>
        replaceGeneratedSections(readFileSync(new URL(file, specsDir), 'utf8'), sections).replaced,
    );
    expect(found.sort()).toEqual(Object.keys(sections).sort());
  });

  it('has one normative document per protocol', () => {
    for (const file of [
      'README.md',
      'rcs-v1.md',
      'bpcs-v1.md',
      'mrs-v1.md',
      'eps-v1.md',
      'run-v1.md',
      'workflow-v1.md',
    ]) {
      expect(specFiles).toContain(file);
    }
  });
});

describe('renderers', () => {
  it('lists every catalog code in the catalog table', () => {
    const table = renderErrorCatalogTable();
    for (const code of ERROR_CODES) expect(table).toContain(`| \`${code}\` |`);
    expect(table.split('\n')).toHaveLength(ERROR_CODES.length + 2);
  });

  it('renders nested fields with required flags', () => {
    const table = renderFieldTable(RcsRequestSchema);
    expect(table).toContain('| `payload.data.options.dry_run` | boolean | yes |');
    expect(table).toContain('`"ship"` or `"preinstalled"`');
  });

  it('names embedded documents instead of expanding them, also as array items', () => {
    const table = renderFieldTable(RunResultDocumentSchema);
    expect(table).toContain('| `nodes` | array of Run v1 node result | yes |');
    expect(table).toContain('| `plan` | Run v1 execution plan or null | yes |');
    expect(table).not.toContain('`nodes[].status`');
    expect(table).not.toContain('`plan.nodes`');
  });

  it('normalizes table padding only', () => {
    expect(normalizeMarkdownTables('| a   | b \\| c |\n| --- | :-- |\ntext  \n')).toBe(
      '|a|b \\| c|\n|---|---|\ntext\n',
    );
  });

  it('replaces sections and reports unknown ones', () => {
    const markdown =
      'a\n<!-- generated:x:start -->\nold\n<!-- generated:x:end -->\n<!-- generated:y:start -->\n<!-- generated:y:end -->\n';
    const result = replaceGeneratedSections(markdown, { x: 'NEW' });
    expect(result.replaced).toEqual(['x']);
    expect(result.unknown).toEqual(['y']);
    expect(result.text).toContain('NEW');
    expect(result.text).not.toContain('old');
    expect(replaceGeneratedSections(result.text, { x: 'NEW' }).text).toBe(result.text);
  });
});
