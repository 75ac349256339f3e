/**
 * Target selection: from `--node` / `--nodes-file` selections to the list of nodes to run on.
 *
 * Everything that can be wrong with a selection is found here, before anything runs: malformed
 * selectors (INVALID_TARGET), names, groups, tags or globs the inventory does not know — all of
 * them at once, with suggestions (UNKNOWN_NODE), and a selection that leaves nothing
 * (NO_TARGETS). Without an inventory, plain names and addresses are ad-hoc nodes
 * (`[user@]host[:port]`); `localhost` (and the other local names) is always available. Which
 * transport each node uses is planning's rule (`planning/targets.ts`), applied here once.
 */
import { RuneError } from '@rune/protocol';
import type { TargetNode } from '@rune/transport';
import {
  assertValidNodeName,
  LOCAL_NODE_NAMES,
  type TargetSource,
  transportFor,
} from '../planning/targets.js';
import { suggestNames } from './did-you-mean.js';
import { evaluateSelection, type UnknownReference } from './evaluate-selection.js';
import type { Inventory, InventoryNode } from './inventory.js';
import { parseAdHocAddress, parseSelection, type SelectorTerm } from './selector.js';

/** One selected node and the transport that reaches it. */
export interface SelectedTarget {
  node: TargetNode;
  /** Transport name (`ssh`, `ssm`, `local`, ...). */
  transport: string;
  /** Whether the node came from the inventory or was named ad hoc. */
  source: TargetSource;
}

/** Options of {@link selectTargets}. */
export interface SelectTargetsOptions {
  /** The inventory; without one only ad-hoc names and addresses can be selected. */
  inventory?: Inventory;
  /** Transport for nodes whose inventory entry names none (config `[core] default_transport`). */
  defaultTransport?: string;
  /** Transport for every node, over the inventory and the local rule (`--transport`). */
  transport?: string;
}

function unknownLabel(reference: UnknownReference): string {
  switch (reference.kind) {
    case 'name':
      return reference.value;
    case 'group':
      return `@${reference.value}`;
    case 'tag':
      return `tag:${reference.value}`;
    case 'glob':
      return reference.value;
  }
}

function candidatesFor(reference: UnknownReference, inventory: Inventory | undefined): string[] {
  if (inventory === undefined) return [];
  switch (reference.kind) {
    case 'name':
      return inventory.nodes.map((node) => node.name);
    case 'group':
      return [...inventory.groups.keys()];
    case 'tag':
      return [...new Set(inventory.nodes.flatMap((node) => node.tags))];
    case 'glob':
      return [];
  }
}

function prefixFor(kind: UnknownReference['kind']): string {
  if (kind === 'group') return '@';
  if (kind === 'tag') return 'tag:';
  return '';
}

function orList(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

function unknownError(unknown: UnknownReference[], inventory: Inventory | undefined): RuneError {
  const seen = new Set<string>();
  const entries: { kind: string; name: string; term: string; suggestions: string[] }[] = [];
  for (const reference of unknown) {
    const name = unknownLabel(reference);
    if (seen.has(name)) continue;
    seen.add(name);
    const prefix = prefixFor(reference.kind);
    const suggestions = suggestNames(reference.value, candidatesFor(reference, inventory)).map(
      (candidate) => `${prefix}${candidate}`,
    );
    entries.push({ kind: reference.kind, name, term: reference.term, suggestions });
  }
  const listed = entries
    .map((entry) =>
      entry.suggestions.length === 0
        ? entry.name
        : `${entry.name} (did you mean ${orList(entry.suggestions)}?)`,
    )
    .join(', ');
  const where =
    inventory === undefined
      ? 'no inventory is loaded (groups, tags and globs need --inventory or [core] inventory)'
      : `not in inventory ${inventory.file ?? ''}`.trimEnd();
  return new RuneError('UNKNOWN_NODE', `unknown node selector(s): ${listed}; ${where}`, {
    details: { unknown: entries, inventory: inventory?.file ?? null },
    source: { component: 'rune-core' },
  });
}

function fromInventory(node: InventoryNode, options: SelectTargetsOptions): SelectedTarget {
  const target: TargetNode = { name: node.name };
  if (node.address !== undefined) target.address = node.address;
  if (node.port !== undefined) target.port = node.port;
  if (node.user !== undefined) target.user = node.user;
  if (node.instanceId !== undefined) target.instanceId = node.instanceId;
  if (node.runAs !== undefined) target.runAs = node.runAs;
  if (Object.keys(node.settings).length > 0) target.settings = { ...node.settings };
  const transport = transportFor(target, 'inventory', {
    requested: options.transport,
    inventory: node.transport,
    defaultTransport: options.defaultTransport,
  });
  return { node: target, transport, source: 'inventory' };
}

function adHoc(name: string, options: SelectTargetsOptions): SelectedTarget {
  const parsed = parseAdHocAddress(name);
  const target: TargetNode = { name };
  if (parsed.address !== name) target.address = parsed.address;
  if (parsed.user !== undefined) target.user = parsed.user;
  if (parsed.port !== undefined) target.port = parsed.port;
  const transport = transportFor(target, 'ad-hoc', {
    requested: options.transport,
    defaultTransport: options.defaultTransport,
  });
  return { node: target, transport, source: 'ad-hoc' };
}

/**
 * Resolves selections (each a `--node` value or a nodes-file line) to target nodes:
 * validated and de-duplicated (here only), in deterministic order (first mention; atoms expand
 * in inventory order), each with its transport. Throws INVALID_TARGET (malformed), UNKNOWN_NODE
 * (listing every unknown reference with suggestions) or NO_TARGETS (nothing left), all before
 * anything runs.
 */
export function selectTargets(
  selections: readonly string[],
  options: SelectTargetsOptions = {},
): SelectedTarget[] {
  const inventory = options.inventory;
  const terms: SelectorTerm[] = selections.flatMap((selection) => parseSelection(selection));
  if (terms.length === 0) {
    throw new RuneError('NO_TARGETS', 'no node selected: use --node or --nodes-file', {
      source: { component: 'rune-core' },
    });
  }
  const byName = new Map((inventory?.nodes ?? []).map((node) => [node.name, node]));
  // Ad-hoc names are validated up front so that a malformed one is INVALID_TARGET, not unknown.
  const acceptUnknownName = (name: string): boolean => {
    if (inventory !== undefined && !LOCAL_NODE_NAMES.includes(name)) return false;
    assertValidNodeName(name);
    parseAdHocAddress(name);
    return true;
  };
  for (const term of terms)
    for (const atom of term.atoms)
      if (atom.kind === 'name' && !byName.has(atom.value)) acceptUnknownName(atom.value);

  const evaluation = evaluateSelection(
    terms,
    {
      nodes: inventory?.nodes ?? [],
      group: (name) => inventory?.groups.get(name),
    },
    { acceptUnknownName },
  );
  if (evaluation.unknown.length > 0) throw unknownError(evaluation.unknown, inventory);
  if (evaluation.names.length === 0) {
    throw new RuneError(
      'NO_TARGETS',
      `the selection ${selections.map((s) => `"${s}"`).join(' ')} leaves no node to run on`,
      { details: { selections: [...selections] }, source: { component: 'rune-core' } },
    );
  }
  // Inventory entries RUNE cannot honour (e.g. an Ansible host with ansible_connection=winrm)
  // fail the run before anything starts; the rest of the inventory stays selectable.
  const refused = evaluation.names
    .map((name) => byName.get(name))
    .filter((node): node is InventoryNode => node?.refusal !== undefined);
  if (refused.length > 0) {
    const reasons = refused.map((node) => node.refusal as string);
    throw new RuneError(
      'INVALID_INVENTORY',
      `${refused.length} selected node(s) cannot be used: ${reasons.join('; ')} (exclude them with !NAME)`,
      {
        details: {
          file: inventory?.file ?? null,
          format: inventory?.format ?? null,
          refused: refused.map((node) => ({ node: node.name, reason: node.refusal })),
        },
        source: { component: 'rune-core' },
      },
    );
  }
  return evaluation.names.map((name) => {
    const node = byName.get(name);
    if (node === undefined) return adHoc(name, options);
    assertValidNodeName(node.name);
    return fromInventory(node, options);
  });
}
