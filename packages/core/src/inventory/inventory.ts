/**
 * Loading and validating an inventory file.
 *
 * The YAML is parsed with source positions kept, so every INVALID_INVENTORY error names the
 * file, a JSON pointer and a line:column — the first thing an operator needs when a fleet-wide
 * run refuses to start. Cross-references (group members naming unknown nodes, groups or tags,
 * cycles between groups) are checked at load time too: a broken group is a broken file, not a
 * surprise at selection time.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { listViolations, RuneError } from '@rune/protocol';
import { parseDocument } from 'yaml';
import { parseLocatedYaml, yamlValue } from '../yaml-located.js';
import { evaluateSelection, type UnknownReference } from './evaluate-selection.js';
import {
  CONTROL_CHARACTER_RANGES,
  type InventoryFile,
  InventoryFileSchema,
} from './inventory-schema.js';
import { parseSelection, type SelectorTerm } from './selector.js';

/** The name of the implicit group holding every node. */
export const ALL_GROUP = 'all';

/** Largest inventory file read, in bytes. */
export const MAX_INVENTORY_BYTES = 16 * 1024 * 1024;

/** One node of an inventory, with defaults applied. */
export interface InventoryNode {
  name: string;
  address?: string;
  port?: number;
  user?: string;
  transport?: string;
  instanceId?: string;
  runAs?: string;
  tags: string[];
  /** Transport settings, snake_case keys (identity_file, proxy_jump, ... and `settings:` entries). */
  settings: Record<string, unknown>;
  /**
   * Why this node cannot be used (an Ansible entry RUNE cannot honour, e.g. another
   * `ansible_connection`), with file and line. Selecting it fails with INVALID_INVENTORY.
   */
  refusal?: string;
}

/** The inventory formats RUNE reads: its own YAML, and Ansible's INI and YAML inventories. */
export type InventoryFormat = 'rune' | 'ansible-ini' | 'ansible-yaml';

/** A loaded, validated inventory. */
export interface Inventory {
  /** The file it came from, when loaded from one. */
  file?: string;
  /** Every node, in file order. */
  nodes: InventoryNode[];
  /** Group name -> member node names (resolved, in selection order), including `all`. */
  groups: ReadonlyMap<string, readonly string[]>;
  /** The format the file was read as (absent: RUNE's own, e.g. built in code). */
  format?: InventoryFormat;
  /** Things in the file RUNE ignores on purpose (e.g. an Ansible password), one line each. */
  warnings?: readonly string[];
}

/** Options of {@link parseInventory}. */
export interface ParseInventoryOptions {
  /** File name used in error messages. */
  file?: string;
}

const SETTING_KEYS = [
  'identity_file',
  'proxy_jump',
  'known_hosts_file',
  'host_key_checking',
  'connect_timeout_ms',
] as const;

/** Appended to RUNE-format errors: which format the file was assumed to be in. */
const RUNE_FORMAT_NOTE =
  ' (read as a RUNE inventory; an Ansible inventory is INI, or YAML with a top-level all: or groups with hosts:)';

interface Location {
  line: number;
  column: number;
}

function inventoryError(
  file: string | undefined,
  pointer: string,
  message: string,
  location: Location | undefined,
  details: Record<string, unknown> = {},
  cause?: unknown,
): RuneError {
  const where = [
    file ?? '<inventory>',
    location === undefined ? undefined : `${location.line}:${location.column}`,
  ]
    .filter((part) => part !== undefined)
    .join(':');
  const fullDetails: Record<string, unknown> = { file: file ?? null, pointer, ...details };
  if (location !== undefined) Object.assign(fullDetails, location);
  fullDetails.format = 'rune';
  return new RuneError(
    'INVALID_INVENTORY',
    `${where}: ${pointer || '/'} ${message}${RUNE_FORMAT_NOTE}`,
    {
      details: fullDetails,
      cause,
      source: { component: 'rune-core' },
    },
  );
}

function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

const CONTROL_CHARACTER = new RegExp(`[${CONTROL_CHARACTER_RANGES}]`, 'u');

/**
 * The first string (key or value, anywhere, including free-form `settings`) holding a control
 * character, by JSON pointer. The schema's patterns say the same for the typed keys; this walk
 * also covers the keys themselves and `settings` values, and names the place precisely.
 */
function findControlCharacter(
  value: unknown,
  pointer: string,
): { pointer: string; code: number } | undefined {
  const check = (text: string, at: string) => {
    const match = CONTROL_CHARACTER.exec(text);
    return match === null ? undefined : { pointer: at, code: match[0].codePointAt(0) ?? 0 };
  };
  if (typeof value === 'string') return check(value, pointer);
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = findControlCharacter(item, `${pointer}/${index}`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const at = `${pointer}/${escapePointer(key)}`;
      const found = check(key, at) ?? findControlCharacter(item, at);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

function describeUnknown(reference: UnknownReference): string {
  switch (reference.kind) {
    case 'name':
      return `unknown node "${reference.value}"`;
    case 'group':
      return `unknown group "@${reference.value}"`;
    case 'tag':
      return `no node has tag "${reference.value}"`;
    case 'glob':
      return `glob "${reference.value}" matches no node`;
  }
}

/**
 * Parses and validates inventory YAML. Throws INVALID_INVENTORY naming the file, the JSON pointer
 * and the line of the first problem (all schema violations are listed in `details.violations`).
 */
export function parseInventory(text: string, options: ParseInventoryOptions = {}): Inventory {
  const file = options.file;
  const { document, syntaxError, locate } = parseLocatedYaml(text);
  if (syntaxError !== undefined) {
    throw inventoryError(
      file,
      '',
      `is not valid YAML: ${syntaxError.message}`,
      syntaxError.location,
      { reason: syntaxError.code },
      syntaxError.error,
    );
  }

  let value: unknown;
  try {
    value = yamlValue(document);
  } catch (error) {
    throw inventoryError(
      file,
      '',
      `cannot be read: ${error instanceof Error ? error.message : String(error)}`,
      undefined,
      {},
      error,
    );
  }
  if (value === null || value === undefined || typeof value !== 'object' || Array.isArray(value)) {
    throw inventoryError(file, '', 'must be a mapping with a "nodes" key', undefined);
  }

  const control = findControlCharacter(value, '');
  if (control !== undefined) {
    const node = /^\/nodes\/([^/]+)/.exec(control.pointer)?.[1];
    const where = node === undefined ? '' : ` (node ${JSON.stringify(node)})`;
    throw inventoryError(
      file,
      control.pointer,
      `contains the control character U+${control.code.toString(16).toUpperCase().padStart(4, '0')}${where}: inventory names, addresses, users and settings must be printable text`,
      locate(control.pointer),
      { character: control.code, ...(node === undefined ? {} : { node }) },
    );
  }
  const violations = listViolations(InventoryFileSchema, value);
  const first = violations[0];
  if (first !== undefined) {
    const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : '';
    throw inventoryError(file, first.pointer, `${first.message}${more}`, locate(first.pointer), {
      violations: violations.map((violation) => ({
        ...violation,
        ...locate(violation.pointer),
      })),
    });
  }
  const parsed = value as InventoryFile;
  return buildInventory(parsed, file, locate);
}

function buildInventory(
  parsed: InventoryFile,
  file: string | undefined,
  locate: (pointer: string) => Location | undefined,
): Inventory {
  const defaults = parsed.defaults ?? {};
  const nodes: InventoryNode[] = Object.entries(parsed.nodes).map(([name, entry]) => {
    const merged = { ...defaults, ...(entry ?? {}) };
    const node: InventoryNode = {
      name,
      tags: [...(entry?.tags ?? [])],
      settings: { ...defaults.settings, ...entry?.settings },
    };
    if (merged.address !== undefined) node.address = merged.address;
    if (merged.port !== undefined) node.port = merged.port;
    if (merged.user !== undefined) node.user = merged.user;
    if (merged.transport !== undefined) node.transport = merged.transport;
    if (merged.instance_id !== undefined) node.instanceId = merged.instance_id;
    if (merged.run_as !== undefined) node.runAs = merged.run_as;
    for (const key of SETTING_KEYS) {
      if (merged[key] !== undefined) node.settings[key] = merged[key];
    }
    return node;
  });

  const groupSources = parsed.groups ?? {};
  if (Object.hasOwn(groupSources, ALL_GROUP)) {
    const pointer = `/groups/${ALL_GROUP}`;
    throw inventoryError(
      file,
      pointer,
      '"all" is reserved for the implicit group of every node',
      locate(pointer),
    );
  }
  const groupTerms = new Map<string, SelectorTerm[]>();
  for (const [group, members] of Object.entries(groupSources)) {
    const terms: SelectorTerm[] = [];
    members.forEach((member, index) => {
      try {
        terms.push(...parseSelection(member));
      } catch (error) {
        const pointer = `/groups/${escapePointer(group)}/${index}`;
        const reason = RuneError.is(error) ? error.message : String(error);
        throw inventoryError(file, pointer, reason, locate(pointer), {}, error);
      }
    });
    groupTerms.set(group, terms);
  }

  const resolved = new Map<string, readonly string[]>();
  resolved.set(
    ALL_GROUP,
    nodes.map((node) => node.name),
  );
  const resolving: string[] = [];
  const resolveGroup = (group: string): readonly string[] | undefined => {
    const done = resolved.get(group);
    if (done !== undefined) return done;
    const terms = groupTerms.get(group);
    if (terms === undefined) return undefined;
    if (resolving.includes(group)) {
      const cycle = [...resolving.slice(resolving.indexOf(group)), group].map((g) => `@${g}`);
      const pointer = `/groups/${escapePointer(group)}`;
      throw inventoryError(
        file,
        pointer,
        `groups form a cycle: ${cycle.join(' -> ')}`,
        locate(pointer),
        {
          cycle,
        },
      );
    }
    resolving.push(group);
    const evaluation = evaluateSelection(terms, { nodes, group: resolveGroup });
    resolving.pop();
    const unknown = evaluation.unknown[0];
    if (unknown !== undefined) {
      const pointer = `/groups/${escapePointer(group)}`;
      throw inventoryError(
        file,
        pointer,
        `${describeUnknown(unknown)} (in "${unknown.term}")`,
        locate(pointer),
        { unknown: evaluation.unknown },
      );
    }
    resolved.set(group, evaluation.names);
    return evaluation.names;
  };
  for (const group of groupTerms.keys()) resolveGroup(group);

  const inventory: Inventory = { nodes, groups: resolved, format: 'rune' };
  if (file !== undefined) inventory.file = file;
  return inventory;
}

/** Options of {@link loadInventory}. */
export interface LoadInventoryOptions {
  /** File reader, injectable for tests. */
  readFile?: (path: string) => Promise<string>;
  /** Whether a directory exists (for Ansible's group_vars/ and host_vars/), injectable for tests. */
  isDirectory?: (path: string) => Promise<boolean>;
}

const ANSIBLE_TOP_LEVEL = /^(?:all|plugin)\s*:/m;

function isAnsibleYamlShape(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const top = value as Record<string, unknown>;
  if ('all' in top || 'plugin' in top || '_meta' in top) return true;
  if ('nodes' in top) return false;
  return Object.values(top).some(
    (group) =>
      group !== null &&
      typeof group === 'object' &&
      !Array.isArray(group) &&
      ['hosts', 'children', 'vars'].some((key) => key in group),
  );
}

/**
 * Decides how to read an inventory file. `.ini`/`.cfg` is Ansible INI. `.yml`/`.yaml`/`.json` is
 * YAML: Ansible's when it has a top-level `all:` (or `plugin:`), or no `nodes:` and a group
 * mapping with `hosts:`/`children:`/`vars:`; RUNE's otherwise. Any other name (Ansible's usual
 * `hosts`, `inventory`) is YAML when it parses to a mapping of either shape, else Ansible INI.
 */
export function detectInventoryFormat(path: string, text: string): InventoryFormat {
  const extension = extname(path).toLowerCase();
  if (extension === '.ini' || extension === '.cfg') return 'ansible-ini';
  const document = parseDocument(text, { uniqueKeys: false });
  let value: unknown;
  if (document.errors.length === 0) {
    try {
      value = yamlValue(document);
    } catch {
      value = undefined;
    }
  }
  if (extension === '.yml' || extension === '.yaml' || extension === '.json') {
    if (value === undefined) return ANSIBLE_TOP_LEVEL.test(text) ? 'ansible-yaml' : 'rune';
    return isAnsibleYamlShape(value) ? 'ansible-yaml' : 'rune';
  }
  if (isAnsibleYamlShape(value)) return 'ansible-yaml';
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'nodes' in value)
    return 'rune';
  return 'ansible-ini';
}

async function directoryExists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Reads and validates an inventory file: RUNE's YAML or an Ansible INI/YAML inventory (see
 * {@link detectInventoryFormat}). Throws INVALID_INVENTORY when it cannot.
 */
export async function loadInventory(
  path: string,
  options: LoadInventoryOptions = {},
): Promise<Inventory> {
  let text: string;
  try {
    text = await (options.readFile ?? ((file: string) => readFile(file, 'utf8')))(path);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    throw inventoryError(
      path,
      '',
      `cannot be read${typeof code === 'string' ? ` (${code})` : ''}`,
      undefined,
      typeof code === 'string' ? { reason: code } : {},
      error,
    );
  }
  if (text.length > MAX_INVENTORY_BYTES)
    throw inventoryError(path, '', `is larger than ${MAX_INVENTORY_BYTES} bytes`, undefined);
  const format = detectInventoryFormat(path, text);
  if (format !== 'rune') {
    // Ansible also reads group_vars/ and host_vars/ beside the inventory; RUNE does not, and
    // ignoring them would connect with other users, ports or proxies than Ansible would.
    const isDirectory = options.isDirectory ?? directoryExists;
    for (const name of ['group_vars', 'host_vars']) {
      const directory = join(dirname(path), name);
      if (await isDirectory(directory)) {
        throw new RuneError(
          'INVALID_INVENTORY',
          `${path}: ${directory} holds Ansible variables RUNE does not read; write the merged inventory to a directory without group_vars/ and host_vars/ (\`ansible-inventory -i ${basename(path)} --list --yaml > ~/rune/hosts.yml\`) and use that file (read as an Ansible ${format === 'ansible-ini' ? 'INI' : 'YAML'} inventory)`,
          {
            details: { file: path, format, directory, reason: 'ansible-vars-directory' },
            source: { component: 'rune-core' },
          },
        );
      }
    }
  }
  if (format === 'rune') return parseInventory(text, { file: path });
  // Loaded only for an Ansible inventory: most runs never read one (start-up time).
  const { parseAnsibleInventory } = await import('./ansible-inventory.js');
  return parseAnsibleInventory(text, { file: path, format });
}
