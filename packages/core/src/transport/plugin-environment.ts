/**
 * The environment a plugin gets on the local transport.
 *
 * The control node's environment holds secrets that are none of a plugin's business: the SSH key
 * passphrase (`RUNE_SSH_PASSPHRASE`), AWS credentials (`AWS_*`), the ssh-agent socket
 * (`SSH_AUTH_SOCK`), CI and cloud tokens. A plugin is a reviewed action, but it is still code that
 * should see only what it needs, the same on every transport. So the local transport passes an
 * allow-list, not a deny-list: a new secret variable nobody thought of is excluded by default.
 *
 * Kept: where to find programs (`PATH`), who and where the user is (`HOME`, `USER`, `LOGNAME`),
 * how to format text and time (`LANG`, `LANGUAGE`, the standard `LC_*` categories, `TZ`) and where
 * to put temporary files (`TMPDIR`). Not kept: `TERM` (plugins never have a terminal; their
 * stdout is a pipe), `SHELL`, display and session variables, and everything else. The transport
 * adds `RUNE_RUN_MARKER` (see run-marker.ts). Embedders who want something else pass an explicit
 * environment (`LocalTransportOptions.env`), which is used as given.
 */

/** The variables a plugin inherits from the control node's environment, in this order. */
export const PLUGIN_ENVIRONMENT_VARIABLES: readonly string[] = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'LANGUAGE',
  'LC_ALL',
  'LC_ADDRESS',
  'LC_COLLATE',
  'LC_CTYPE',
  'LC_IDENTIFICATION',
  'LC_MEASUREMENT',
  'LC_MESSAGES',
  'LC_MONETARY',
  'LC_NAME',
  'LC_NUMERIC',
  'LC_PAPER',
  'LC_TELEPHONE',
  'LC_TIME',
  'TZ',
  'TMPDIR',
];

/** `PATH` when the control node's environment has none. */
export const DEFAULT_PLUGIN_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * The minimal plugin environment taken from `source` (default `process.env`): the variables in
 * {@link PLUGIN_ENVIRONMENT_VARIABLES} that are set, with `PATH` defaulting to
 * {@link DEFAULT_PLUGIN_PATH}. Nothing else is copied.
 */
export function minimalPluginEnvironment(
  source: Readonly<Record<string, string | undefined>> = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of PLUGIN_ENVIRONMENT_VARIABLES) {
    const value = source[name];
    if (value !== undefined) env[name] = value;
  }
  env.PATH ??= DEFAULT_PLUGIN_PATH;
  return env;
}
