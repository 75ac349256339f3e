/**
 * Failure path only: turns a bootstrap that did not start the plugin into the precise EPS error,
 * from its status lines (`notinstalled`, `unsafe <component>`, `missing <command>...`,
 * `error <reason>`, `miss`) and, when
 * it ran through sudo, from sudo's own words. The hot path never comes here.
 */
import { type ErrorCode, RuneError } from '@rune/protocol';
import { preflightFailure, type TransportExecRequest } from '@rune/transport';
import type { SshConnection } from './connection-pool.js';
import { preinstalledPath } from './exec-request.js';
import type { RawRun } from './exec-session.js';
import { buildSudoCheckCommand } from './remote-command.js';
import type { ResolvedSshTransportOptions } from './ssh-options.js';

/**
 * sudo -n says "a password is required" both when a password rule exists and (by design, to hide
 * its policy) when nothing allows the command. `sudo -n -l` tells them apart without a password
 * when the user has any NOPASSWD rule; when it cannot, the answer is "password required".
 */
async function sudoAllowed(connection: SshConnection, runAs: string): Promise<boolean> {
  try {
    const channel = await connection.exec(buildSudoCheckCommand(runAs));
    return await new Promise<boolean>((resolve) => {
      let stderr = '';
      let code: number | null = null;
      channel.on('data', () => undefined);
      channel.stderr.on('data', (chunk: Buffer) => {
        if (stderr.length < 4096) stderr += chunk.toString();
      });
      channel.on('exit', (exitCode: number | null) => {
        code = exitCode;
      });
      // 'close' repeats the status, for an 'exit' that came before this listener existed.
      channel.on('close', (closeCode?: number | null) => {
        resolve((code ?? closeCode) === 0 || /password is required/i.test(stderr));
      });
      channel.end();
    });
  } catch {
    return true;
  }
}

/**
 * Throws the precise error when `raw` did not start the plugin (nor store an upload, nor report
 * a cache miss, which the caller handles); returns when it did.
 */
export async function checkBootstrap(
  connection: SshConnection,
  raw: RawRun,
  request: TransportExecRequest,
  runAs: string | undefined,
  options: ResolvedSshTransportOptions,
): Promise<void> {
  const { bootstrap } = raw;
  if (bootstrap.pgid !== undefined) return;
  if (bootstrap.find('stored') !== undefined) return;
  if (raw.lost !== undefined) return;
  const node = request.node.name;
  if (bootstrap.find('notinstalled') !== undefined) {
    throw new RuneError(
      'PLUGIN_NOT_INSTALLED',
      `deploy mode preinstalled: ${preinstalledPath(request, options)} does not exist on ${node}`,
      { details: { path: preinstalledPath(request, options) } },
    );
  }
  const unsafe = bootstrap.find('unsafe');
  if (unsafe !== undefined) {
    const component = unsafe.args.join(' ');
    const location =
      request.deployMode === 'ship' ? options.remoteCacheDir : preinstalledPath(request, options);
    throw new RuneError(
      'PLUGIN_CACHE_UNSAFE',
      `${request.deployMode === 'ship' ? 'the plugin cache' : 'the preinstalled plugin'} ${location} on ${node} is not safe: ${component} is a symlink, not owned by the remote user or root, or writable by others; nothing was executed`,
      {
        details: { path: location, unsafe_component: component, deploy_mode: request.deployMode },
      },
    );
  }
  const missing = bootstrap.find('missing');
  if (missing !== undefined) throw preflightFailure(missing.args, { node, transport: 'ssh' });
  const error = bootstrap.find('error');
  const text = bootstrap.preamble;
  if (runAs !== undefined && error === undefined && bootstrap.statuses.length === 0) {
    let code: ErrorCode | undefined;
    if (/password is required|a terminal is required|askpass/i.test(text)) {
      code = (await sudoAllowed(connection, runAs))
        ? 'PRIVILEGE_PASSWORD_REQUIRED'
        : 'PRIVILEGE_DENIED';
    } else if (
      /not allowed|not in the sudoers|may not run sudo|unknown user|sudo: .*not found/i.test(text)
    )
      code = 'PRIVILEGE_DENIED';
    else if (raw.exitCode === 127) code = 'PRIVILEGE_DENIED';
    if (code !== undefined) {
      throw new RuneError(
        code,
        code === 'PRIVILEGE_PASSWORD_REQUIRED'
          ? `sudo on ${node} needs a password to run as ${runAs}; RUNE only uses non-interactive sudo (add a NOPASSWD rule)`
          : `the login user on ${node} may not run the plugin as ${runAs} through sudo: ${text.trim()}`,
        { details: { run_as: runAs, sudo_message: text.trim(), exit_code: raw.exitCode } },
      );
    }
  }
  if (error !== undefined && error.args[0] === 'no-sha256') {
    throw new RuneError(
      'PLUGIN_INTEGRITY_FAILED',
      `${node} has neither sha256sum nor shasum: the cached plugin cannot be verified, nothing was executed`,
    );
  }
  if (bootstrap.find('miss') !== undefined) return;
  throw new RuneError(
    'PLUGIN_NOT_EXECUTABLE',
    error !== undefined
      ? `the RUNE bootstrap on ${node} could not prepare the plugin (${error.args.join(' ')}); check the remote cache dir ${options.remoteCacheDir}`
      : `the RUNE bootstrap did not start on ${node} (exit ${raw.exitCode ?? raw.signal}): ${text.trim() || 'no output'}`,
    {
      details: {
        exit_code: raw.exitCode,
        signal: raw.signal,
        stderr: text.trim(),
        bootstrap: error?.args,
      },
    },
  );
}
