/**
 * Checks on an exec request before anything is contacted: the action name, deploy mode, sha256,
 * sizes, run-as user and timeout. Each value that later becomes a bootstrap argument must match
 * its strict grammar here, so a bad request is a precise EPS error and never reaches a node.
 */
import { isActionName, RuneError } from '@rune/protocol';
import { type TransportExecRequest, validatePreflightCommands } from '@rune/transport';
import { isSafeRemotePath, SHA256_HEX_PATTERN, USER_NAME_PATTERN } from './remote-command.js';
import type { ResolvedSshTransportOptions } from './ssh-options.js';

/** Throws the RuneError for the first thing wrong with `request`. */
export function validateExecRequest(
  request: TransportExecRequest,
  options: ResolvedSshTransportOptions,
): void {
  const { plugin } = request;
  if (!isActionName(plugin.action)) {
    throw new RuneError(
      'INVALID_ACTION_NAME',
      `invalid action name: ${JSON.stringify(plugin.action)}`,
    );
  }
  if (request.deployMode !== 'ship' && request.deployMode !== 'preinstalled') {
    throw new RuneError(
      'UNSUPPORTED_FEATURE',
      `deploy mode ${String(request.deployMode)} is not supported over SSH`,
    );
  }
  if (request.deployMode === 'ship') {
    if (!SHA256_HEX_PATTERN.test(plugin.sha256)) {
      throw new RuneError('INVALID_ARGUMENT', 'plugin.sha256 must be 64 lowercase hex digits');
    }
    const maxPlugin = options.maxPluginBytes;
    if (plugin.content.byteLength > maxPlugin) {
      throw new RuneError(
        'PAYLOAD_TOO_LARGE',
        `the plugin is ${plugin.content.byteLength} bytes; the SSH transport ships at most ${maxPlugin}`,
        { details: { plugin_bytes: plugin.content.byteLength, limit: maxPlugin } },
      );
    }
  }
  const maxStdin = options.maxStdinBytes;
  if (request.stdin.byteLength > maxStdin) {
    throw new RuneError(
      'PAYLOAD_TOO_LARGE',
      `the request document is ${request.stdin.byteLength} bytes; the SSH transport accepts at most ${maxStdin}`,
      { details: { stdin_bytes: request.stdin.byteLength, limit: maxStdin } },
    );
  }
  const runAs = request.runAs ?? request.node.runAs;
  if (runAs !== undefined && !USER_NAME_PATTERN.test(runAs)) {
    throw new RuneError('INVALID_ARGUMENT', `invalid run_as user name: ${JSON.stringify(runAs)}`);
  }
  if (!Number.isFinite(request.timeoutMs) || request.timeoutMs <= 0) {
    throw new RuneError('INVALID_ARGUMENT', 'timeoutMs must be a positive number');
  }
  // Required command names become bootstrap arguments: each must match the manifest grammar.
  if (request.preflight !== undefined) validatePreflightCommands(request.preflight.commands);
}

/** Where deploy mode `preinstalled` finds the plugin on the node (checked: an absolute safe path). */
export function preinstalledPath(
  request: TransportExecRequest,
  options: ResolvedSshTransportOptions,
): string {
  const path =
    request.plugin.remotePath ?? `${options.remotePluginDir}/${request.plugin.action}.sh`;
  if (!isSafeRemotePath(path) || path.startsWith('~')) {
    throw new RuneError(
      'INVALID_ARGUMENT',
      `unsafe preinstalled plugin path: ${JSON.stringify(path)}`,
    );
  }
  return path;
}
