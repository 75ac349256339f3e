/**
 * The rules of target selection that everything else follows: which node names are valid, which
 * nodes are "this machine", and which transport a node uses. Inventory selection, planning and the
 * local transport all ask this module, so the rule is written once.
 *
 * Transport choice, first match wins: the transport the request names for every node
 * (`--transport`, `--use-ssm`), the node's inventory entry, the local rule, then `[core]
 * default_transport` (whose default is {@link DEFAULT_TRANSPORT}).
 */
import { RuneError } from '@rune/protocol';
import type { TargetNode } from '@rune/transport';

/** Node names that mean "this machine". */
export const LOCAL_NODE_NAMES: readonly string[] = ['localhost', 'local', '127.0.0.1', '::1'];

/** The name of the transport that runs plugins on this machine. */
export const LOCAL_TRANSPORT = 'local';

/** The transport of a node nothing else decides for: the default of `[core] default_transport`. */
export const DEFAULT_TRANSPORT = 'ssh';

/** Where a selected node came from. */
export type TargetSource = 'inventory' | 'ad-hoc';

/**
 * True when a node uses the local transport unless something names another one. A node with a
 * port never does (`127.0.0.1:2222` is an SSH server on this machine). An ad-hoc node does when
 * its name is a local name (`ops@localhost` names an SSH login, not this machine); an inventory
 * node when its name or its address is one.
 */
export function usesLocalTransport(node: TargetNode, source: TargetSource): boolean {
  if (node.port !== undefined) return false;
  if (LOCAL_NODE_NAMES.includes(node.name)) return true;
  return (
    source === 'inventory' && node.address !== undefined && LOCAL_NODE_NAMES.includes(node.address)
  );
}

/**
 * True when a node is this machine as the local transport checks it before running anything: its
 * address (or its name, without one) is a local name or `hostName` (the control node's host name).
 */
export function isThisMachine(node: TargetNode, hostName?: string): boolean {
  const host = node.address ?? node.name;
  return LOCAL_NODE_NAMES.includes(host) || (hostName !== undefined && host === hostName);
}

/** How a node's transport is chosen (see the module comment for the order). */
export interface TransportChoice {
  /** The transport the request names for every node. */
  requested?: string | undefined;
  /** The transport the node's inventory entry names. */
  inventory?: string | undefined;
  /** `[core] default_transport`. */
  defaultTransport?: string | undefined;
}

/** The transport of one node. */
export function transportFor(
  node: TargetNode,
  source: TargetSource,
  choice: TransportChoice,
): string {
  if (choice.requested !== undefined) return choice.requested;
  if (choice.inventory !== undefined) return choice.inventory;
  if (usesLocalTransport(node, source)) return LOCAL_TRANSPORT;
  return choice.defaultTransport ?? DEFAULT_TRANSPORT;
}

const NODE_NAME = /^[^\s/\\\p{Cc}-][^\s/\\\p{Cc}]{0,254}$/u;

/**
 * Throws INVALID_TARGET unless `name` can name a node: no whitespace, slashes or control
 * characters, not starting with `-` (it could be read as an option), not `.` or `..`.
 */
export function assertValidNodeName(name: unknown): asserts name is string {
  if (typeof name === 'string' && NODE_NAME.test(name) && name !== '.' && name !== '..') return;
  throw new RuneError(
    'INVALID_TARGET',
    `"${String(name).slice(0, 80)}" is not a valid node name (no whitespace, slashes or control characters; must not start with "-")`,
    { source: { component: 'rune-core' }, details: { node: String(name).slice(0, 256) } },
  );
}
