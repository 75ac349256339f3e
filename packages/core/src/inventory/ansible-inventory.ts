/**
 * Ansible inventories (INI and YAML) as RUNE inventories: every Ansible host becomes a node, every
 * Ansible group a group (`all` and `ungrouped` included, children resolved), and the connection
 * variables RUNE understands become node fields:
 *
 * | Ansible                                         | RUNE                                    |
 * | ----------------------------------------------- | --------------------------------------- |
 * | `ansible_host` (`ansible_ssh_host`)             | `address`                               |
 * | `ansible_port` (`ansible_ssh_port`, `host:port`)| `port`                                  |
 * | `ansible_user` (`ansible_ssh_user`)             | `user`                                  |
 * | `ansible_become` true (+ `ansible_become_user`) | `run_as` (default root; sudo only)      |
 * | `ansible_ssh_private_key_file`                  | `identity_file`                         |
 * | `-J` / `ProxyJump` in `ansible_ssh_*_args`      | `proxy_jump`                            |
 * | `ansible_connection=local`                      | transport `local`; otherwise `ssh`      |
 * | group membership                                | `@group` and also `tag:group`           |
 *
 * What RUNE cannot honour is never approximated: a host whose entry needs another connection
 * (winrm, docker, aws_ssm, ...), a ProxyCommand, another become method, a templated (`{{ }}`) or
 * vault-encrypted connection value, or an invalid address/port/user is kept but marked with a
 * `refusal`; selecting it fails with INVALID_INVENTORY before anything runs, while the rest of the
 * inventory stays usable. Passwords (`ansible_password`, `ansible_become_password`, ...) are
 * never read into a node: RUNE authenticates with keys and the agent only, and says so in a
 * warning. Other variables are ignored.
 */

import { parseAnsibleIni } from './ansible-ini.js';
import { shlexSplit } from './ansible-ini-values.js';
import {
  ANSIBLE_ALL,
  ANSIBLE_UNGROUPED,
  type AnsibleInventoryFormat,
  type AnsibleInventoryModel,
  ansibleInventoryError,
} from './ansible-model.js';
import { parseAnsibleYaml } from './ansible-yaml.js';
import type { Inventory, InventoryNode } from './inventory.js';
import { INVENTORY_NAME_PATTERN } from './selector.js';

/** Options of {@link parseAnsibleInventory}. */
export interface ParseAnsibleInventoryOptions {
  /** File name used in error messages. */
  file?: string;
  format: AnsibleInventoryFormat;
}

/** `ansible_connection` values that mean "SSH" to RUNE. */
const SSH_CONNECTIONS = new Set([
  'ssh',
  'smart',
  'paramiko',
  'paramiko_ssh',
  'ansible.builtin.ssh',
  'ansible.builtin.paramiko_ssh',
  'ansible.legacy.ssh',
]);
const LOCAL_CONNECTIONS = new Set(['local', 'ansible.builtin.local', 'ansible.legacy.local']);

/** Variables holding secrets RUNE never uses. */
const PASSWORD_VARIABLES = [
  'ansible_password',
  'ansible_ssh_pass',
  'ansible_ssh_password',
  'ansible_become_password',
  'ansible_become_pass',
  'ansible_sudo_pass',
  'ansible_sudo_password',
  'ansible_ssh_private_key_passphrase',
];
const SSH_ARGUMENT_VARIABLES = [
  'ansible_ssh_common_args',
  'ansible_ssh_extra_args',
  'ansible_ssh_args',
];
const HOST_KEY_VARIABLES = ['ansible_host_key_checking', 'ansible_ssh_host_key_checking'];

const ADDRESS_PATTERN = /^[^\s/\\,@!+]{1,255}$/;
const USER_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;
const BOOLEAN_TRUE = new Set(['y', 'yes', 'on', '1', 'true', 't']);

/** Ansible's `boolean(value, strict=False)`. */
function isTrue(value: unknown): boolean {
  if (value === true || value === 1) return true;
  return typeof value === 'string' && BOOLEAN_TRUE.has(value.trim().toLowerCase());
}

function firstDefined(variables: Record<string, unknown>, keys: readonly string[]) {
  for (const key of keys)
    if (variables[key] !== undefined && variables[key] !== null)
      return { key, value: variables[key] };
  return undefined;
}

interface Mapped {
  node: InventoryNode;
  refusals: string[];
  warnings: { key: string; text: string }[];
}

/** Reads one connection value as text; a template or vault value cannot be used. */
function textValue(key: string, value: unknown, refusals: string[]): string | undefined {
  if (typeof value === 'object' && value !== null && '__ansible_vault' in value) {
    refusals.push(`${key} is vault-encrypted (RUNE does not decrypt Ansible vault)`);
    return undefined;
  }
  if (typeof value !== 'string' && typeof value !== 'number') {
    refusals.push(`${key} must be a string, got ${JSON.stringify(value)}`);
    return undefined;
  }
  const text = String(value);
  if (text.includes('{{') || text.includes('{%')) {
    refusals.push(`${key}="${text}" is a Jinja template (RUNE does not evaluate templates)`);
    return undefined;
  }
  return text;
}

function sshArgumentSettings(
  key: string,
  text: string,
  node: InventoryNode,
  refusals: string[],
  warnings: Mapped['warnings'],
): void {
  let tokens: string[];
  try {
    tokens = shlexSplit(text.replaceAll('#', '\\#'));
  } catch {
    refusals.push(`${key} cannot be parsed`);
    return;
  }
  const ignored: string[] = [];
  for (let index = 0; index < tokens.length; index += 1) {
    const token = tokens[index] as string;
    let option: string | undefined;
    if (token === '-o') {
      option = tokens[index + 1];
      index += 1;
    } else if (token.startsWith('-o')) option = token.slice(2);
    else if (token === '-J') {
      option = `ProxyJump=${tokens[index + 1] ?? ''}`;
      index += 1;
    }
    if (option === undefined) {
      ignored.push(token);
      continue;
    }
    const match = /^([A-Za-z]+)\s*(?:=|\s)\s*(.*)$/.exec(option.trim());
    const name = match?.[1]?.toLowerCase();
    const value = match?.[2] ?? '';
    if (name === 'proxycommand') {
      refusals.push(
        `${key} sets a ProxyCommand, which RUNE does not run (use ProxyJump / -J, or [ssh] proxy_jump)`,
      );
    } else if (name === 'proxyjump' && value !== '' && value.toLowerCase() !== 'none') {
      node.settings.proxy_jump = value;
    } else {
      ignored.push(token === '-o' || token.startsWith('-o') ? `-o ${option}` : token);
    }
  }
  if (ignored.length > 0)
    warnings.push({
      key: `${key} ${ignored.join(' ')}`,
      text: `${key} options ${ignored.join(' ')} are ignored (RUNE's own [ssh] settings apply; host-key checking is never weakened by an inventory)`,
    });
}

function mapHost(name: string, variables: Record<string, unknown>): Mapped {
  const node: InventoryNode = { name, tags: [], settings: {} };
  const refusals: string[] = [];
  const warnings: Mapped['warnings'] = [];

  const connection = firstDefined(variables, ['ansible_connection']);
  const connectionText =
    connection === undefined ? 'ssh' : textValue(connection.key, connection.value, refusals);
  if (connectionText !== undefined) {
    if (LOCAL_CONNECTIONS.has(connectionText)) node.transport = 'local';
    else if (SSH_CONNECTIONS.has(connectionText)) node.transport = 'ssh';
    else
      refusals.push(
        `ansible_connection=${connectionText} is not supported (RUNE connects over ssh, or local for ansible_connection=local)`,
      );
  }

  const address = firstDefined(variables, ['ansible_host', 'ansible_ssh_host']);
  if (address !== undefined) {
    const text = textValue(address.key, address.value, refusals);
    if (text !== undefined) {
      if (ADDRESS_PATTERN.test(text)) node.address = text;
      else refusals.push(`${address.key}="${text}" is not a valid host name or address`);
    }
  }
  const port = firstDefined(variables, ['ansible_port', 'ansible_ssh_port']);
  if (port !== undefined) {
    const text = textValue(port.key, port.value, refusals);
    if (text !== undefined) {
      const number = /^[0-9]{1,5}$/.test(text) ? Number.parseInt(text, 10) : Number.NaN;
      if (number >= 1 && number <= 65_535) node.port = number;
      else refusals.push(`${port.key}=${text} is not a port (1-65535)`);
    }
  }
  const user = firstDefined(variables, ['ansible_user', 'ansible_ssh_user']);
  if (user !== undefined) {
    const text = textValue(user.key, user.value, refusals);
    if (text !== undefined) {
      if (USER_PATTERN.test(text)) node.user = text;
      else refusals.push(`${user.key}="${text}" is not a valid user name`);
    }
  }

  if (isTrue(variables.ansible_become)) {
    const method = firstDefined(variables, ['ansible_become_method']);
    const methodText =
      method === undefined ? 'sudo' : textValue(method.key, method.value, refusals);
    if (methodText !== undefined && methodText !== 'sudo' && methodText !== 'ansible.builtin.sudo')
      refusals.push(
        `ansible_become_method=${methodText} is not supported (RUNE escalates with non-interactive sudo only)`,
      );
    const becomeUser = firstDefined(variables, ['ansible_become_user']);
    const runAs =
      becomeUser === undefined ? 'root' : textValue(becomeUser.key, becomeUser.value, refusals);
    if (runAs !== undefined) {
      if (USER_PATTERN.test(runAs)) node.runAs = runAs;
      else refusals.push(`ansible_become_user="${runAs}" is not a valid user name`);
    }
  }

  const key = firstDefined(variables, ['ansible_ssh_private_key_file', 'ansible_private_key_file']);
  if (key !== undefined) {
    const text = textValue(key.key, key.value, refusals);
    if (text !== undefined && text !== '') node.settings.identity_file = text;
  }
  for (const argumentKey of SSH_ARGUMENT_VARIABLES) {
    const value = variables[argumentKey];
    if (value === undefined || value === null || value === '') continue;
    const text = textValue(argumentKey, value, refusals);
    if (text !== undefined) sshArgumentSettings(argumentKey, text, node, refusals, warnings);
  }

  for (const passwordKey of PASSWORD_VARIABLES)
    if (variables[passwordKey] !== undefined)
      warnings.push({
        key: passwordKey,
        text: `${passwordKey} is ignored: RUNE never uses a password from an inventory (it authenticates with keys or ssh-agent, and needs sudo without a password)`,
      });
  for (const hostKeyKey of HOST_KEY_VARIABLES)
    if (variables[hostKeyKey] !== undefined)
      warnings.push({
        key: hostKeyKey,
        text: `${hostKeyKey} is ignored: host-key checking comes from RUNE's [ssh] host_key_checking, never from an inventory`,
      });
  return { node, refusals, warnings };
}

function listHosts(hosts: readonly string[]): string {
  const shown = hosts.slice(0, 5).join(', ');
  return hosts.length > 5 ? `${shown}, ... (${hosts.length} hosts)` : shown;
}

/** Maps a parsed Ansible model to a RUNE inventory (see the module comment). */
export function ansibleModelToInventory(
  model: AnsibleInventoryModel,
  options: ParseAnsibleInventoryOptions,
): Inventory {
  const source = model.source;
  const warningHosts = new Map<string, { text: string; hosts: string[] }>();
  const groupsOf = new Map<string, string[]>();
  for (const group of model.groups.keys()) {
    if (group === ANSIBLE_ALL || group === ANSIBLE_UNGROUPED) continue;
    for (const host of model.groupHosts(group)) {
      const list = groupsOf.get(host) ?? [];
      list.push(group);
      groupsOf.set(host, list);
    }
  }
  const nodes: InventoryNode[] = [];
  for (const host of model.hosts.values()) {
    if (!INVENTORY_NAME_PATTERN.test(host.name))
      throw ansibleInventoryError(
        source,
        host.line,
        `host name "${host.name}" is not a valid RUNE node name (letters, digits, _ . -)`,
        { host: host.name },
      );
    const mapped = mapHost(host.name, model.hostVariables(host.name));
    mapped.node.tags = (groupsOf.get(host.name) ?? []).filter((group) =>
      INVENTORY_NAME_PATTERN.test(group),
    );
    if (mapped.refusals.length > 0) {
      const where = `${options.file ?? '<inventory>'}:${host.line}`;
      mapped.node.refusal = `${where}: host "${host.name}" cannot be used: ${mapped.refusals.join('; ')}`;
    }
    for (const warning of mapped.warnings) {
      const entry = warningHosts.get(warning.key) ?? { text: warning.text, hosts: [] };
      entry.hosts.push(host.name);
      warningHosts.set(warning.key, entry);
    }
    nodes.push(mapped.node);
  }
  const groups = new Map<string, readonly string[]>();
  groups.set(ANSIBLE_ALL, model.groupHosts(ANSIBLE_ALL));
  for (const group of model.groups.keys())
    if (group !== ANSIBLE_ALL) groups.set(group, model.groupHosts(group));
  const inventory: Inventory = {
    nodes,
    groups,
    format: options.format,
    warnings: [...warningHosts.values()].map(
      (entry) => `${options.file ?? '<inventory>'}: ${entry.text} — on ${listHosts(entry.hosts)}`,
    ),
  };
  if (options.file !== undefined) inventory.file = options.file;
  return inventory;
}

/** Parses the Ansible model of an inventory (hosts, groups, variables), without mapping it. */
export function parseAnsibleInventoryModel(
  text: string,
  options: ParseAnsibleInventoryOptions,
): AnsibleInventoryModel {
  return options.format === 'ansible-ini'
    ? parseAnsibleIni(text, options.file)
    : parseAnsibleYaml(text, options.file);
}

/**
 * Parses an Ansible inventory (INI or YAML) into a RUNE inventory. Throws INVALID_INVENTORY with
 * file, line and the format assumed when the file cannot be read as that format.
 */
export function parseAnsibleInventory(
  text: string,
  options: ParseAnsibleInventoryOptions,
): Inventory {
  return ansibleModelToInventory(parseAnsibleInventoryModel(text, options), options);
}
