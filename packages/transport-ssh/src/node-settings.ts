/**
 * Per-node SSH settings from the inventory or config (`node.settings`): the transport-specific
 * keys a node may carry, checked and typed once before anything connects.
 */
import type { TargetNode } from '@rune/transport';
import type { HostKeyChecking } from './ssh-config.js';
import { invalidConfig } from './ssh-options.js';

/** What one node's `settings` ask of the SSH transport. */
export interface NodeSettings {
  /** `identity_file` / `identity_files`: keys tried before every other source. */
  identityFiles?: string[];
  /** `proxy_jump`: this node's jump hosts. */
  proxyJump?: string;
  /** `known_hosts_file`: one extra known_hosts file for this node. */
  knownHostsFile?: string;
  /** `host_key_checking`: this node's mode. */
  hostKeyChecking?: HostKeyChecking;
}

/** Reads and checks `node.settings`; a malformed value is INVALID_CONFIG naming node and key. */
export function readNodeSettings(node: TargetNode): NodeSettings {
  const raw = node.settings ?? {};
  const result: NodeSettings = {};
  const files: string[] = [];
  for (const key of ['identity_file', 'identity_files'] as const) {
    const value = raw[key];
    if (value === undefined) continue;
    if (typeof value === 'string') files.push(value);
    else if (Array.isArray(value) && value.every((item) => typeof item === 'string'))
      files.push(...value);
    else
      throw invalidConfig(
        `node ${node.name}: settings.${key} must be a string or a list of strings`,
        node.name,
      );
  }
  if (files.length > 0) result.identityFiles = files;
  const jump = raw.proxy_jump;
  if (jump !== undefined) {
    if (typeof jump !== 'string')
      throw invalidConfig(`node ${node.name}: settings.proxy_jump must be a string`, node.name);
    result.proxyJump = jump;
  }
  const knownHosts = raw.known_hosts_file;
  if (knownHosts !== undefined) {
    if (typeof knownHosts !== 'string') {
      throw invalidConfig(
        `node ${node.name}: settings.known_hosts_file must be a string`,
        node.name,
      );
    }
    result.knownHostsFile = knownHosts;
  }
  const mode = raw.host_key_checking;
  if (mode !== undefined) {
    if (mode !== 'strict' && mode !== 'accept-new' && mode !== 'off') {
      throw invalidConfig(
        `node ${node.name}: settings.host_key_checking must be strict, accept-new or off`,
        node.name,
      );
    }
    result.hostKeyChecking = mode;
  }
  return result;
}
