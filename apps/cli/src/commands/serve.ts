/**
 * `rune serve`: runs the RUNE service (@rune/server) with the `[server]` section of the
 * configuration and the same transport modules as `rune run`. SIGTERM or SIGINT shuts it down
 * gracefully (no new runs, running ones drain for `shutdown_grace`, the rest are cancelled with
 * remote kill, every record written) and exits 0; a second signal exits at once.
 */
import { loadConfig } from '@rune/core';
import type { CliIo } from '../cli-io.js';
import { terminalSafe } from '../render/terminal-text.js';
import { CLI_CONFIG_MODULES, CLI_TRANSPORT_MODULES } from '../transports.js';
import { type CommonArgs, reportError } from './command-context.js';

/** The flags of `rune serve`. */
export interface ServeArgs extends CommonArgs {
  /** host:port (overrides `[server] listen`). */
  listen?: string;
  /** `human` or `json` (overrides `[server] log_format`). */
  logFormat?: 'human' | 'json';
}

/** Runs `rune serve` until a signal; returns the exit code. */
export async function serveCommand(args: ServeArgs, io: CliIo): Promise<number> {
  const log = (line: string): void => io.err(`${terminalSafe(line)}\n`);
  let server: import('@rune/server').RuneServer;
  try {
    const loaded = loadConfig({
      env: io.env,
      ...(args.config === undefined ? {} : { configFile: args.config }),
      ...(args.listen === undefined ? {} : { overrides: { server: { listen: args.listen } } }),
      transportModules: CLI_TRANSPORT_MODULES,
      configModules: CLI_CONFIG_MODULES,
    });
    const { createRuneServer } = await import('@rune/server');
    server = await createRuneServer({
      config: loaded,
      env: io.env,
      log,
      ...(args.logFormat === undefined ? {} : { logFormat: args.logFormat }),
    });
    const url = await server.listen();
    const { redactDatabaseUrl } = await import('@rune/server');
    server.log(
      `rune serve: listening on ${url} (store ${redactDatabaseUrl(server.settings.storePath)})`,
    );
  } catch (error) {
    return reportError(io, args, error);
  }
  let signals = 0;
  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        server.log(`rune serve: ${signal} again, exiting without waiting`);
        process.exit(130);
      }
      server.log(
        `rune serve: ${signal}: accepting no new runs; draining for up to ${Math.round(server.settings.shutdownGraceMs / 1000)} s`,
      );
      server.close().then(
        () => {
          server.log('rune serve: stopped; every record written');
          resolve(0);
        },
        (error: unknown) => resolve(reportError(io, args, error)),
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    // SIGHUP re-reads [server] policy; requests keep flowing, and a broken file keeps the old one.
    process.on('SIGHUP', () => {
      const reloaded = server.reloadPolicy();
      log(
        reloaded.ok
          ? `rune serve: SIGHUP: policy reloaded (sha256 ${reloaded.digest.slice(0, 12)})`
          : `rune serve: SIGHUP: policy NOT reloaded, the previous one stays in force: ${reloaded.error.message}`,
      );
      // The alert rules file too ([server] alert_rules), with the same rule for a broken file.
      const rules = server.reloadAlertRules();
      log(
        rules.ok
          ? `rune serve: SIGHUP: alert rules reloaded (${rules.rules} rule(s))`
          : `rune serve: SIGHUP: alert rules NOT reloaded, the previous ones stay in force: ${rules.error.message}`,
      );
    });
  });
}
