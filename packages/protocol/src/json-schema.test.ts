import { readdirSync, readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import {
  buildJsonSchemas,
  formatJsonSchemaFile,
  JSON_SCHEMA_DIALECT,
  JSON_SCHEMA_FILES,
  jsonSchemaId,
  RUN_JSON_SCHEMA_FILES,
  RUN_RULES_BEYOND_SCHEMA,
  WORKFLOW_JSON_SCHEMA_FILES,
  WORKFLOW_RULES_BEYOND_SCHEMA,
} from './json-schema.js';

const schemasDir = new URL('../../../specs/schemas/', import.meta.url);
const REGENERATE =
  'run `cd packages/protocol && npm run generate:schemas` (or, from the repository root, `npx -y pnpm@10.34.9 --filter @rune/protocol generate:schemas`) and commit the result';

describe('generated JSON Schemas', () => {
  const schemas = buildJsonSchemas();

  it('are one per protocol and one per run document kind, with dialect and $id', () => {
    expect(Object.keys(schemas).sort()).toEqual(
      [
        ...Object.values(JSON_SCHEMA_FILES),
        ...Object.values(RUN_JSON_SCHEMA_FILES),
        ...Object.values(WORKFLOW_JSON_SCHEMA_FILES),
      ].sort(),
    );
    const expectations: [string, Parameters<typeof jsonSchemaId>[0], string][] = [
      ...Object.entries(JSON_SCHEMA_FILES).map(
        ([protocol, file]): [string, Parameters<typeof jsonSchemaId>[0], string] => [
          file,
          protocol as keyof typeof JSON_SCHEMA_FILES,
          file.split('.')[1] ?? '',
        ],
      ),
      ...Object.entries(RUN_JSON_SCHEMA_FILES).map(
        ([kind, file]): [string, Parameters<typeof jsonSchemaId>[0], string] => [file, 'run', kind],
      ),
      ...Object.entries(WORKFLOW_JSON_SCHEMA_FILES).map(
        ([kind, file]): [string, Parameters<typeof jsonSchemaId>[0], string] => [
          file,
          'workflow',
          kind,
        ],
      ),
    ];
    for (const [file, protocol, documentName] of expectations) {
      const schema = schemas[file];
      expect(schema?.$schema).toBe(JSON_SCHEMA_DIALECT);
      expect(schema?.$id).toBe(jsonSchemaId(protocol, documentName));
      expect(Object.keys(schema ?? {}).slice(0, 2)).toEqual(['$schema', '$id']);
    }
  });

  it('state the run rules beyond JSON Schema in every run schema', () => {
    for (const file of Object.values(RUN_JSON_SCHEMA_FILES)) {
      expect(schemas[file]?.$comment).toBe(RUN_RULES_BEYOND_SCHEMA);
    }
  });

  it('state the workflow rules beyond JSON Schema in every workflow schema', () => {
    for (const file of Object.values(WORKFLOW_JSON_SCHEMA_FILES)) {
      expect(schemas[file]?.$comment).toBe(WORKFLOW_RULES_BEYOND_SCHEMA);
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
