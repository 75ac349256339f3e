/**
 * Ansible's inventory data model (hosts, groups, children, variables) and the two rules that
 * make an Ansible inventory mean what it means:
 *
 * - reconciliation: `all` contains every group without a parent, and a host that is in no group
 *   but `all` is in `ungrouped`;
 * - variable precedence: a host's variables are its groups' variables combined in the order
 *   (depth below `all`, `ansible_group_priority`, name) — so a child group beats its parent,
 *   `all` loses to everything — and then the host's own variables on top. Top-level keys replace
 *   (Ansible's default `hash_behaviour = replace`).
 *
 * Both INI and YAML parsers fill this model; `ansible-inventory.ts` maps it to RUNE nodes.
 */
import { RuneError } from '@rune/protocol';

/** The Ansible inventory formats RUNE reads. */
export type AnsibleInventoryFormat = 'ansible-ini' | 'ansible-yaml';

/** Where the text being parsed came from, for error messages. */
export interface AnsibleSource {
  file?: string;
  format: AnsibleInventoryFormat;
}

const FORMAT_LABEL: Record<AnsibleInventoryFormat, string> = {
  'ansible-ini': 'an Ansible INI inventory',
  'ansible-yaml': 'an Ansible YAML inventory',
};

/** An INVALID_INVENTORY error naming file, line and the format the file was read as. */
export function ansibleInventoryError(
  source: AnsibleSource,
  line: number | undefined,
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): RuneError {
  const where = [source.file ?? '<inventory>', line].filter((part) => part !== undefined).join(':');
  return new RuneError(
    'INVALID_INVENTORY',
    `${where}: ${message} (read as ${FORMAT_LABEL[source.format]})`,
    {
      details: { file: source.file ?? null, line: line ?? null, format: source.format, ...details },
      cause,
      source: { component: 'rune-core' },
    },
  );
}

/** One host: where it was first defined and the variables set on it directly. */
export interface AnsibleHost {
  name: string;
  line: number;
  vars: Record<string, unknown>;
}

/** One group: its own variables, direct hosts, children and parents. */
export interface AnsibleGroup {
  name: string;
  line: number;
  vars: Record<string, unknown>;
  /** `ansible_group_priority` (default 1): orders groups of equal depth; not a variable. */
  priority: number;
  hosts: string[];
  children: string[];
  parents: string[];
}

/** The implicit group of every host. */
export const ANSIBLE_ALL = 'all';
/** The implicit group of hosts that are in no other group. */
export const ANSIBLE_UNGROUPED = 'ungrouped';

/** An Ansible inventory being built by a parser; call {@link reconcile} once it is complete. */
export class AnsibleInventoryModel {
  /** Hosts in the order they were first defined. */
  readonly hosts = new Map<string, AnsibleHost>();
  /** Groups in the order they were first declared. */
  readonly groups = new Map<string, AnsibleGroup>();
  /** Host -> the groups it was added to directly (kept beside `groups` for large inventories). */
  private readonly memberships = new Map<string, Set<string>>();
  private depths: Map<string, number> | undefined;
  private ancestorCache: Map<string, Set<string>> | undefined;

  constructor(readonly source: AnsibleSource) {
    this.addGroup(ANSIBLE_ALL, 0);
    this.addGroup(ANSIBLE_UNGROUPED, 0);
    this.addChild(ANSIBLE_ALL, ANSIBLE_UNGROUPED, 0);
  }

  /** Declares a group (idempotent). */
  addGroup(name: string, line: number): AnsibleGroup {
    const existing = this.groups.get(name);
    if (existing !== undefined) return existing;
    const group: AnsibleGroup = {
      name,
      line,
      vars: {},
      priority: 1,
      hosts: [],
      children: [],
      parents: [],
    };
    this.groups.set(name, group);
    return group;
  }

  /** Adds a host to a group (declaring both if needed); `port` becomes its `ansible_port`. */
  addHost(name: string, group: string, line: number, port?: number): AnsibleHost {
    let host = this.hosts.get(name);
    if (host === undefined) {
      host = { name, line, vars: {} };
      this.hosts.set(name, host);
    }
    const target = this.addGroup(group, line);
    let memberships = this.memberships.get(name);
    if (memberships === undefined) {
      memberships = new Set();
      this.memberships.set(name, memberships);
    }
    if (!memberships.has(group)) {
      memberships.add(group);
      target.hosts.push(name);
    }
    if (port !== undefined) host.vars.ansible_port = port;
    return host;
  }

  /** Sets a variable of a group; `ansible_group_priority` sets its priority instead. */
  setGroupVariable(group: string, key: string, value: unknown, line: number): void {
    const target = this.addGroup(group, line);
    if (key === 'ansible_group_priority') {
      const priority =
        typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
      if (!Number.isInteger(priority))
        throw ansibleInventoryError(
          this.source,
          line,
          `ansible_group_priority of group "${group}" must be an integer`,
        );
      target.priority = priority;
      return;
    }
    target.vars[key] = value;
  }

  /** Makes `child` a child group of `parent`; refuses a loop, as Ansible does. */
  addChild(parent: string, child: string, line: number): void {
    const parentGroup = this.addGroup(parent, line);
    const childGroup = this.addGroup(child, line);
    if (parentGroup.children.includes(child)) return;
    if (parent === child || this.descendants(child).has(parent)) {
      throw ansibleInventoryError(
        this.source,
        line,
        `adding group "${child}" as a child of "${parent}" creates a loop`,
        { group: child, parent },
      );
    }
    parentGroup.children.push(child);
    childGroup.parents.push(parent);
    this.depths = undefined;
    this.ancestorCache = undefined;
  }

  /** Every group below `group` (not including it). */
  descendants(group: string): Set<string> {
    const found = new Set<string>();
    const visit = (name: string): void => {
      for (const child of this.groups.get(name)?.children ?? []) {
        if (found.has(child)) continue;
        found.add(child);
        visit(child);
      }
    };
    visit(group);
    return found;
  }

  /** Every group above `group` (not including it). */
  ancestors(group: string): Set<string> {
    if (this.ancestorCache === undefined) this.ancestorCache = new Map();
    const cached = this.ancestorCache.get(group);
    if (cached !== undefined) return cached;
    const found = new Set<string>();
    const visit = (name: string): void => {
      for (const parent of this.groups.get(name)?.parents ?? []) {
        if (found.has(parent)) continue;
        found.add(parent);
        visit(parent);
      }
    };
    visit(group);
    this.ancestorCache.set(group, found);
    return found;
  }

  /** Ansible's reconciliation: top-level groups under `all`, lone hosts in `ungrouped`. */
  reconcile(): void {
    for (const group of this.groups.values()) {
      if (group.name !== ANSIBLE_ALL && group.parents.length === 0)
        this.addChild(ANSIBLE_ALL, group.name, group.line);
    }
    const ungrouped = this.groups.get(ANSIBLE_UNGROUPED) as AnsibleGroup;
    const lone: string[] = [];
    for (const host of this.hosts.values()) {
      const direct = this.memberships.get(host.name) as Set<string>;
      const grouped = [...direct].some(
        (name) => name !== ANSIBLE_ALL && name !== ANSIBLE_UNGROUPED,
      );
      if (grouped) direct.delete(ANSIBLE_UNGROUPED);
      else {
        direct.add(ANSIBLE_UNGROUPED);
        lone.push(host.name);
      }
    }
    ungrouped.hosts = lone;
  }

  /** The groups a host was added to directly. */
  directGroups(host: string): string[] {
    return [...(this.memberships.get(host) ?? [])];
  }

  /** Every group a host belongs to, directly or through children, including `all`. */
  hostGroups(host: string): Set<string> {
    const groups = new Set<string>();
    for (const direct of this.directGroups(host)) {
      groups.add(direct);
      for (const ancestor of this.ancestors(direct)) groups.add(ancestor);
    }
    groups.add(ANSIBLE_ALL);
    return groups;
  }

  /** Depth of a group below `all`: the longest chain of parents. */
  depth(group: string): number {
    if (this.depths === undefined) this.depths = new Map();
    const known = this.depths.get(group);
    if (known !== undefined) return known;
    const parents = this.groups.get(group)?.parents ?? [];
    const depth = parents.length === 0 ? 0 : Math.max(...parents.map((p) => this.depth(p) + 1));
    this.depths.set(group, depth);
    return depth;
  }

  /** A host's effective variables, with Ansible's precedence (see the module comment). */
  hostVariables(host: string): Record<string, unknown> {
    const groups = [...this.hostGroups(host)]
      .map((name) => this.groups.get(name) as AnsibleGroup)
      .sort(
        (a, b) =>
          this.depth(a.name) - this.depth(b.name) ||
          a.priority - b.priority ||
          (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
      );
    const variables: Record<string, unknown> = {};
    for (const group of groups) Object.assign(variables, group.vars);
    Object.assign(variables, this.hosts.get(host)?.vars ?? {});
    return variables;
  }

  /** The hosts of a group and of all its descendants, in host definition order. */
  groupHosts(group: string): string[] {
    const names = new Set(this.groups.get(group)?.hosts ?? []);
    for (const descendant of this.descendants(group))
      for (const host of this.groups.get(descendant)?.hosts ?? []) names.add(host);
    if (group === ANSIBLE_ALL) return [...this.hosts.keys()];
    return [...this.hosts.keys()].filter((name) => names.has(name));
  }
}
