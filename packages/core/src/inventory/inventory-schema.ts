/**
 * The inventory file format (YAML), as a TypeBox schema. See docs/fleet.md for the user guide.
 *
 * Unknown keys are rejected everywhere (a typo such as `adress` must not silently fall back to
 * connecting to the node name). Transport settings a node commonly needs are first-class keys;
 * anything else a transport understands goes in the free-form `settings` map.
 */
import { type Static, Type } from '@sinclair/typebox';

const NAME = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$';

/**
 * Characters no inventory string may hold (a regular-expression class body): C0 controls (NUL ends a C string in the tools a node
 * is reached with; ESC and CR rewrite the operator's terminal), DEL, C1 controls and the Unicode
 * bidi controls (they make a name read differently from what it is).
 */
export const CONTROL_CHARACTER_RANGES =
  '\\u0000-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069';
/** A string without {@link CONTROL_CHARACTER_RANGES} characters. */
export const PRINTABLE_PATTERN = `^[^${CONTROL_CHARACTER_RANGES}]*$`;
/** A non-empty string without control characters. */
const Printable = (options: { description: string; maxLength?: number }) =>
  Type.String({ minLength: 1, pattern: PRINTABLE_PATTERN, ...options });

const Name = (description: string) => Type.String({ pattern: NAME, description });

/** Settings a node (or `defaults`) may carry. */
const nodeSettingsProperties = {
  address: Type.String({
    minLength: 1,
    maxLength: 255,
    pattern: `^[^\\s/\\\\,@!+${CONTROL_CHARACTER_RANGES}]+$`,
    description: 'Host name or IP address to connect to (defaults to the node name).',
  }),
  port: Type.Integer({ minimum: 1, maximum: 65_535, description: 'SSH port (default 22).' }),
  user: Type.String({
    pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$',
    description: 'Login user.',
  }),
  transport: Type.String({
    pattern: '^[a-z][a-z0-9-]{0,31}$',
    description: 'Transport name: ssh, ssm, local, ...',
  }),
  instance_id: Type.String({
    pattern: '^(i|mi)-[0-9a-f]{8,32}$',
    description: 'AWS SSM instance id (i-... or mi-...).',
  }),
  run_as: Type.String({
    pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$',
    description: 'Run the plugin as this user through non-interactive sudo.',
  }),
  identity_file: Printable({ description: 'SSH private key file.' }),
  proxy_jump: Printable({ description: 'SSH jump host ([user@]host[:port]).' }),
  known_hosts_file: Printable({ description: 'Extra known_hosts file.' }),
  host_key_checking: Type.Union(
    [Type.Literal('strict'), Type.Literal('accept-new'), Type.Literal('off')],
    { description: 'SSH host key checking mode.' },
  ),
  connect_timeout_ms: Type.Integer({ minimum: 1, description: 'Connect timeout in ms.' }),
  settings: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }), Type.Unknown(), {
    additionalProperties: false,
    description: 'Further transport-specific settings (snake_case keys), passed through.',
  }),
};

/** `defaults:` — settings applied to every node that does not set them itself. */
export const InventoryDefaultsSchema = Type.Partial(Type.Object(nodeSettingsProperties), {
  additionalProperties: false,
});

/** One entry under `nodes:` (YAML `null` means "no settings"). */
export const InventoryNodeSchema = Type.Union([
  Type.Null(),
  Type.Partial(
    Type.Object({
      ...nodeSettingsProperties,
      tags: Type.Array(Name('Tag.'), {
        uniqueItems: true,
        description: 'Tags for tag:NAME selectors.',
      }),
    }),
    { additionalProperties: false },
  ),
]);

/** One entry under `groups:`: a list of selectors (names, @groups, tag:, globs, !exclusions). */
export const InventoryGroupSchema = Type.Array(
  Printable({ description: 'Selector.', maxLength: 4096 }),
  {
    description: 'Members: selector terms, e.g. [web01, "web*", "tag:eu", "@db", "!web03"].',
  },
);

/** The whole inventory file. */
export const InventoryFileSchema = Type.Object(
  {
    version: Type.Optional(Type.Literal(1)),
    defaults: Type.Optional(InventoryDefaultsSchema),
    nodes: Type.Record(Type.String({ pattern: NAME }), InventoryNodeSchema, {
      additionalProperties: false,
    }),
    groups: Type.Optional(
      Type.Record(Type.String({ pattern: NAME }), InventoryGroupSchema, {
        additionalProperties: false,
      }),
    ),
  },
  { additionalProperties: false },
);

/** The inventory file as parsed from YAML and validated. */
export type InventoryFile = Static<typeof InventoryFileSchema>;
