/**
 * Ansible's INI inventory dialect, parsed line by line like Ansible's own `ini` inventory plugin:
 * `[group]` sections of host lines (`host key=value ...`), `[group:children]` sections of group
 * names and `[group:vars]` sections of `key=value` lines; hosts before any section are
 * ungrouped. A group may be named in `:children` or `:vars` before its own section, but must be
 * declared somewhere. Comments start with `#` or `;`.
 *
 * Why not an INI package from npm: the maintained ones (`ini`, `js-ini`, ...) parse
 * `key = value` sections; none reads host lines with several `key=value` pairs, shell quoting,
 * Python-literal values or `[group:children]`, which is most of what this dialect is.
 */
import { expandHostPattern, HostPatternError } from './ansible-host-pattern.js';
import { parseIniValue, ShlexError, shlexSplit } from './ansible-ini-values.js';
import {
  AnsibleInventoryModel,
  type AnsibleSource,
  ansibleInventoryError,
} from './ansible-model.js';

const SECTION = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$/;
const GROUP_NAME = /^([^:\]\s]+)\s*(?:#.*)?$/;

interface PendingDeclaration {
  line: number;
  state: 'vars' | 'children';
  parents: string[];
}

/** Parses an Ansible INI inventory; throws INVALID_INVENTORY with file and line. */
export function parseAnsibleIni(text: string, file?: string): AnsibleInventoryModel {
  const source: AnsibleSource = { format: 'ansible-ini', ...(file === undefined ? {} : { file }) };
  const model = new AnsibleInventoryModel(source);
  const pending = new Map<string, PendingDeclaration>();
  let group = 'ungrouped';
  let state: 'hosts' | 'vars' | 'children' = 'hosts';

  const lines = text.split(/\r?\n/);
  lines.forEach((rawLine, index) => {
    const lineNumber = index + 1;
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const fail = (message: string, details: Record<string, unknown> = {}, cause?: unknown) =>
      ansibleInventoryError(source, lineNumber, message, details, cause);

    const section = SECTION.exec(line);
    if (section !== null) {
      group = section[1] as string;
      const kind = section[2] ?? 'hosts';
      if (kind !== 'hosts' && kind !== 'vars' && kind !== 'children')
        throw fail(`section [${group}:${kind}] has unknown type "${kind}"`);
      state = kind;
      if (!model.groups.has(group)) {
        // [group] or [group:children] declares a group; [group:vars] only refers to one.
        if (state === 'vars' && !pending.has(group))
          pending.set(group, { line: lineNumber, state, parents: [] });
        model.addGroup(group, lineNumber);
      }
      const waiting = pending.get(group);
      if (waiting !== undefined && state !== 'vars') {
        if (waiting.state === 'children')
          for (const parent of waiting.parents) model.addChild(parent, group, waiting.line);
        pending.delete(group);
      }
      return;
    }
    if (line.startsWith('[') && line.endsWith(']'))
      throw fail(
        `invalid section "${line}": a section is [group], [group:vars] or [group:children], without spaces`,
      );

    if (state === 'hosts') {
      let tokens: string[];
      try {
        tokens = shlexSplit(line);
      } catch (error) {
        if (error instanceof ShlexError)
          throw fail(`cannot parse host line: ${error.message}`, {}, error);
        throw error;
      }
      const pattern = tokens[0];
      if (pattern === undefined) return;
      const variables: [string, unknown][] = [];
      for (const token of tokens.slice(1)) {
        const equals = token.indexOf('=');
        if (equals === -1)
          throw fail(`expected key=value host variable after "${pattern}", got "${token}"`);
        variables.push([token.slice(0, equals), parseIniValue(token.slice(equals + 1))]);
      }
      let expanded: ReturnType<typeof expandHostPattern>;
      try {
        expanded = expandHostPattern(pattern);
      } catch (error) {
        if (error instanceof HostPatternError)
          throw fail(`${error.message} (in "${pattern}")`, { pattern }, error);
        throw error;
      }
      for (const host of expanded.hosts) {
        const entry = model.addHost(host, group, lineNumber, expanded.port);
        for (const [key, value] of variables) entry.vars[key] = value;
      }
    } else if (state === 'vars') {
      const equals = line.indexOf('=');
      if (equals === -1) throw fail(`expected key=value in [${group}:vars], got "${line}"`);
      const key = line.slice(0, equals).trim();
      const value = parseIniValue(line.slice(equals + 1).trim());
      model.setGroupVariable(group, key, value, lineNumber);
    } else {
      const child = GROUP_NAME.exec(line)?.[1];
      if (child === undefined)
        throw fail(`expected a group name in [${group}:children], got "${line}"`);
      // A child declared later waits in `pending` (Ansible's pending_declarations).
      if (model.groups.has(child)) {
        model.addChild(group, child, lineNumber);
      } else {
        const waiting = pending.get(child);
        if (waiting === undefined)
          pending.set(child, { line: lineNumber, state: 'children', parents: [group] });
        else waiting.parents.push(group);
      }
    }
  });

  const [name, undeclared] = [...pending.entries()][0] ?? [];
  if (name !== undefined && undeclared !== undefined) {
    throw ansibleInventoryError(
      source,
      undeclared.line,
      undeclared.state === 'vars'
        ? `section [${name}:vars] names group "${name}", which is not defined anywhere`
        : `section [${undeclared.parents.at(-1)}:children] includes undefined group "${name}"`,
      { group: name },
    );
  }
  model.reconcile();
  return model;
}
