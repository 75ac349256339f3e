import { readdirSync, readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import {
  buildJsonSchemas,
  formatJsonSchemaFile,
  JSON_SCHEMA_DIALECT,
  JSON_SCHEMA_FILES,
  jsonSchemaId,
} from './json-schema.js';

const schemasDir = new URL('../../../specs/schemas/', import.meta.url);
const REGENERATE =
  'run `cd packages/protocol && npm run generate:schemas` (or, from the repository root, `npx -y pnpm@10.34.9 --filter @rune/protocol generate:schemas`) and commit the result';

describe('generated JSON Schemas', () => {
  const schemas = buildJsonSchemas();

  it('are one per protocol, with dialect and $id', () => {
    expect(Object.keys(schemas).sort()).toEqual(Object.values(JSON_SCHEMA_FILES).sort());
    for (const [protocol, file] of Object.entries(JSON_SCHEMA_FILES)) {
      const schema = schemas[file];
      expect(schema?.$schema).toBe(JSON_SCHEMA_DIALECT);
      expect(schema?.$id).toBe(
        jsonSchemaId(protocol as keyof typeof JSON_SCHEMA_FILES, file.split('.')[1] ?? ''),
      );
      expect(Object.keys(schema ?? {}).slice(0, 2)).toEqual(['$schema', '$id']);
    }
  });

  it('are plain JSON that a draft-07 validator compiles strictly', () => {
    const ajv = new Ajv({ strict: true, strictTypes: false, allowUnionTypes: true });
    for (const schema of Object.values(schemas)) {
      expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
      expect(() => ajv.compile(schema)).not.toThrow();
    }
  });

  it.each(Object.entries(schemas))(
    'specs/schemas/%s matches the TypeBox source',
    (file, schema) => {
      let committed: string | undefined;
      try {
        committed = readFileSync(new URL(file, schemasDir), 'utf8');
      } catch {
        committed = undefined;
      }
      expect(committed, `specs/schemas/${file} is missing or out of date: ${REGENERATE}`).toBe(
        formatJsonSchemaFile(schema),
      );
    },
  );

  it('leaves no stray file in specs/schemas', () => {
    const files = readdirSync(schemasDir).filter((name) => name.endsWith('.json'));
    expect(
      files.sort(),
      `specs/schemas holds files the generator does not write: ${REGENERATE}`,
    ).toEqual(Object.keys(schemas).sort());
  });
});
