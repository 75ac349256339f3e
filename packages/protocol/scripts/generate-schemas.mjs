#!/usr/bin/env node
// Writes specs/schemas/*.json and the generated sections of specs/*.md from the built
// @rune/protocol (dist/). Run through `npm run generate:schemas` (builds first). With --check,
// writes nothing and exits 1 when a committed file differs from what would be generated.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const rootDir = join(packageDir, '..', '..');
const specsDir = join(rootDir, 'specs');
const schemasDir = join(specsDir, 'schemas');
const check = process.argv.includes('--check');

const protocol = await import(join(packageDir, 'dist', 'index.js'));
const stale = [];
const writtenMarkdown = [];

// Markdown is compared by content: Biome aligns table columns in committed files.
function emit(path, text, normalize = (value) => value) {
  let current;
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    current = undefined;
  }
  if (current !== undefined && normalize(current) === normalize(text)) return;
  stale.push(relative(rootDir, path));
  if (check) return;
  writeFileSync(path, text);
  if (path.endsWith('.md')) writtenMarkdown.push(path);
}

mkdirSync(schemasDir, { recursive: true });
for (const [file, schema] of Object.entries(protocol.buildJsonSchemas())) {
  emit(join(schemasDir, file), protocol.formatJsonSchemaFile(schema));
}

const sections = protocol.buildSpecSections();
const filled = new Set();
for (const file of readdirSync(specsDir).filter((name) => name.endsWith('.md'))) {
  const path = join(specsDir, file);
  const result = protocol.replaceGeneratedSections(readFileSync(path, 'utf8'), sections);
  if (result.unknown.length > 0) {
    console.error(`${path}: unknown generated sections: ${result.unknown.join(', ')}`);
    process.exit(1);
  }
  for (const name of result.replaced) filled.add(name);
  emit(path, result.text, protocol.normalizeMarkdownTables);
}
const missing = Object.keys(sections).filter((name) => !filled.has(name));
if (missing.length > 0) {
  console.error(`no specs/*.md holds these generated sections: ${missing.join(', ')}`);
  process.exit(1);
}

if (writtenMarkdown.length > 0) {
  const biome = join(rootDir, 'node_modules', '.bin', 'biome');
  if (existsSync(biome)) {
    spawnSync(biome, ['format', '--write', ...writtenMarkdown], { stdio: 'inherit' });
  } else {
    console.warn('biome not found: run `npx biome format --write specs` before committing');
  }
}

if (check && stale.length > 0) {
  console.error(
    `out of date (run: cd packages/protocol && npm run generate:schemas):\n  ${stale.join('\n  ')}`,
  );
  process.exit(1);
}
console.log(stale.length === 0 ? 'specs are up to date' : `wrote:\n  ${stale.join('\n  ')}`);
