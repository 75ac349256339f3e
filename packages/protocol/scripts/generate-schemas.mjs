#!/usr/bin/env node
// Writes specs/schemas/*.json and the generated sections of specs/*.md from the built
// @rune/protocol (dist/). Run through `npm run generate:schemas` (builds first). With --check,
// writes nothing and exits 1 when a committed file differs from what would be generated.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const specsDir = join(packageDir, '..', '..', 'specs');
const schemasDir = join(specsDir, 'schemas');
const check = process.argv.includes('--check');

const protocol = await import(join(packageDir, 'dist', 'index.js'));
const stale = [];

function emit(path, text) {
  let current;
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === text) return;
  stale.push(relative(join(packageDir, '..', '..'), path));
  if (!check) writeFileSync(path, text);
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
  emit(path, result.text);
}
const missing = Object.keys(sections).filter((name) => !filled.has(name));
if (missing.length > 0) {
  console.error(`no specs/*.md holds these generated sections: ${missing.join(', ')}`);
  process.exit(1);
}

if (check && stale.length > 0) {
  console.error(
    `out of date (run: cd packages/protocol && npm run generate:schemas):\n  ${stale.join('\n  ')}`,
  );
  process.exit(1);
}
console.log(stale.length === 0 ? 'specs are up to date' : `wrote:\n  ${stale.join('\n  ')}`);
