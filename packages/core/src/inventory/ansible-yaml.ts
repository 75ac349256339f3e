/**
 * Ansible's YAML inventory format (the `yaml` inventory plugin): top-level groups, each a mapping
 * of `hosts` (host pattern -> variables), `vars` and `children` (group name -> the same structure,
 * recursively). YAML 1.1 is used, as Ansible's PyYAML does, so `yes`/`on` are booleans there too.
 *
 * Stricter than Ansible on purpose: where Ansible warns and skips (an unknown key such as `host:`
 * in a group, a group that is not a mapping) RUNE refuses the file, because a skipped typo
 * silently drops hosts or their connection settings. Duplicate keys are errors for the same
 * reason (PyYAML keeps the last one).
 */
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  type LineCounter,
  type Pair,
  parseDocument,
  type ScalarTag,
  LineCounter as YamlLineCounter,
  type Node as YamlNode,
} from 'yaml';
import { YAML_MAX_ALIAS_COUNT } from '../yaml-located.js';
import { expandHostPattern, HostPatternError } from './ansible-host-pattern.js';
import {
  AnsibleInventoryModel,
  type AnsibleSource,
  ansibleInventoryError,
} from './ansible-model.js';

const GROUP_SECTIONS = new Set(['hosts', 'vars', 'children']);

/** Ansible's YAML tags: `!vault` (encrypted; kept as Ansible prints it) and `!unsafe`. */
const ANSIBLE_TAGS: ScalarTag[] = [
  {
    tag: '!vault',
    resolve: (text: string) => ({ __ansible_vault: text }),
  } as unknown as ScalarTag,
  { tag: '!unsafe', resolve: (text: string) => text } as unknown as ScalarTag,
];

/** Parses YAML text the way the Ansible YAML reader sees it (YAML 1.1, Ansible's tags). */
export function parseAnsibleYamlDocument(text: string, lineCounter: LineCounter): Document {
  return parseDocument(text, {
    version: '1.1',
    lineCounter,
    uniqueKeys: true,
    prettyErrors: true,
    customTags: ANSIBLE_TAGS,
  });
}

/** Parses an Ansible YAML inventory; throws INVALID_INVENTORY with file and line. */
export function parseAnsibleYaml(text: string, file?: string): AnsibleInventoryModel {
  const source: AnsibleSource = { format: 'ansible-yaml', ...(file === undefined ? {} : { file }) };
  const lineCounter = new YamlLineCounter();
  const document = parseAnsibleYamlDocument(text, lineCounter);
  const lineOf = (node: unknown): number | undefined => {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range === undefined ? undefined : lineCounter.linePos(range[0]).line;
  };
  const syntaxError = document.errors[0];
  if (syntaxError !== undefined) {
    throw ansibleInventoryError(
      source,
      syntaxError.linePos?.[0]?.line,
      `is not valid YAML: ${syntaxError.message.split('\n')[0]}`,
      { reason: syntaxError.code },
      syntaxError,
    );
  }
  const resolve = (node: unknown): unknown => (isAlias(node) ? node.resolve(document) : node);
  const isNull = (node: unknown): boolean =>
    node === null || node === undefined || (isScalar(node) && node.value === null);
  const toJs = (node: unknown): unknown =>
    node === null || node === undefined
      ? null
      : (node as YamlNode).toJS(document, { maxAliasCount: YAML_MAX_ALIAS_COUNT });
  const keyText = (pair: Pair): string => String(toJs(pair.key));

  const root = resolve(document.contents);
  if (isNull(root)) throw ansibleInventoryError(source, 1, 'is empty');
  if (!isMap(root))
    throw ansibleInventoryError(source, lineOf(root), 'must be a mapping of group names');
  const model = new AnsibleInventoryModel(source);

  const entries = (
    node: unknown,
    what: string,
    line: number | undefined,
  ): { key: string; value: unknown; line: number }[] => {
    const resolved = resolve(node);
    if (isNull(resolved)) return [];
    // `hosts: web01` and `children: web` are allowed shorthands for a one-entry mapping.
    if (isScalar(resolved) && typeof resolved.value === 'string')
      return [{ key: resolved.value, value: null, line: lineOf(resolved) ?? line ?? 1 }];
    if (!isMap(resolved))
      throw ansibleInventoryError(source, lineOf(resolved) ?? line, `${what} must be a mapping`);
    return resolved.items.map((pair) => ({
      key: keyText(pair),
      value: pair.value,
      line: lineOf(pair.key) ?? line ?? 1,
    }));
  };

  const parseGroup = (name: string, node: unknown, line: number): void => {
    model.addGroup(name, line);
    const data = resolve(node);
    if (isNull(data)) return;
    if (!isMap(data))
      throw ansibleInventoryError(
        source,
        lineOf(data) ?? line,
        `group "${name}" must be a mapping with hosts, vars or children`,
        { group: name },
      );
    for (const pair of data.items) {
      const key = keyText(pair);
      const keyLine = lineOf(pair.key) ?? line;
      if (!GROUP_SECTIONS.has(key))
        throw ansibleInventoryError(
          source,
          keyLine,
          `unexpected key "${key}" in group "${name}": only hosts, vars and children are valid`,
          { group: name, key },
        );
      if (key === 'vars') {
        for (const entry of entries(pair.value, `vars of group "${name}"`, keyLine))
          model.setGroupVariable(name, entry.key, toJs(resolve(entry.value)), entry.line);
      } else if (key === 'children') {
        for (const entry of entries(pair.value, `children of group "${name}"`, keyLine)) {
          parseGroup(entry.key, entry.value, entry.line);
          model.addChild(name, entry.key, entry.line);
        }
      } else {
        for (const entry of entries(pair.value, `hosts of group "${name}"`, keyLine)) {
          const variables = resolve(entry.value);
          if (!isNull(variables) && !isMap(variables))
            throw ansibleInventoryError(
              source,
              lineOf(variables) ?? entry.line,
              `host "${entry.key}" must map to its variables (or nothing)`,
              { host: entry.key },
            );
          let expanded: ReturnType<typeof expandHostPattern>;
          try {
            expanded = expandHostPattern(entry.key);
          } catch (error) {
            if (error instanceof HostPatternError)
              throw ansibleInventoryError(
                source,
                entry.line,
                `${error.message} (in "${entry.key}")`,
                { pattern: entry.key },
                error,
              );
            throw error;
          }
          const values = isNull(variables) ? {} : (toJs(variables) as Record<string, unknown>);
          for (const host of expanded.hosts) {
            const added = model.addHost(host, name, entry.line, expanded.port);
            Object.assign(added.vars, values);
          }
        }
      }
    }
  };

  for (const pair of root.items) {
    const name = keyText(pair);
    const line = lineOf(pair.key) ?? 1;
    if (name === 'plugin')
      throw ansibleInventoryError(
        source,
        line,
        'is an inventory plugin configuration (dynamic inventory), which RUNE does not run: write its hosts out with `ansible-inventory -i FILE --list --yaml > hosts.yml` and use that',
      );
    if (name === '_meta')
      throw ansibleInventoryError(
        source,
        line,
        'is `ansible-inventory --list` JSON (script format): write it with `ansible-inventory -i FILE --list --yaml` instead',
      );
    parseGroup(name, pair.value, line);
  }
  model.reconcile();
  return model;
}
