/**
 * How a transport package plugs into configuration: it owns its config section (`[ssh]`,
 * `[ssm]`, ...) — the schema, the defaults and how a transport is built from it — so core and the
 * CLI never know a transport's keys, ports or instance maps. A package exports its module from a
 * light entry point (e.g. `@rune/transport-ssh/config`) that only imports TypeBox and this
 * package, so validating a config file never loads ssh2 or the AWS SDK; `fromConfig` imports the
 * heavy part lazily, by package name (so a bundler leaves it out of a CLI bundle).
 *
 * Core's `loadConfig({ transportModules })` validates each section against `configSchema` (an
 * unknown key is an INVALID_CONFIG error naming the file and key), merges the layers (files,
 * `RUNE_<SECTION>_<KEY>` variables, flags) key by key and hands the merged section to
 * `fromConfig` without filling in any default: the transport applies its own defaults, once.
 */
import type { ConfigSectionModule } from './config-section-module.js';
import type { Transport } from './transport.js';

/** What `fromConfig` may use besides its own section. */
export interface TransportConfigContext {
  /** Environment variables the transport may read (a passphrase variable, `AWS_*`, `HOME`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** RUNE's state directory, `$XDG_STATE_HOME/rune` (e.g. RUNE's own known_hosts). */
  readonly stateDir: string;
  /**
   * Resolves a control-node path as core resolves its own path keys: `~` is the home directory
   * and a relative path is relative to the working directory RUNE was started in. A module calls
   * it for the keys of its section that name files on the control node.
   */
  resolveLocalPath(path: string): string;
  /** Settings of other sections that apply to every transport. */
  readonly shared: {
    /** `[core] default_user`, when the operator set it (it has no default). */
    readonly defaultUser?: string;
    /** `[remote_plugins] base_dir`: where preinstalled plugins live on the nodes. */
    readonly remotePluginDir: string;
  };
  /** The config file an error about a missing setting should tell the operator to edit. */
  readonly configFile: string;
  /** True when the process may ask the operator on its terminal (e.g. a key passphrase). */
  readonly interactive: boolean;
  /**
   * Wraps every terminal prompt when set (`interactive`): the CLI pauses its progress bar and runs
   * prompts one at a time, so nothing is drawn into the prompt line. Call prompts through it.
   */
  readonly aroundPrompt?: <T>(ask: () => Promise<T>) => Promise<T>;
  /** Receives one-line warnings for the operator (the CLI prints them, a server logs them). */
  readonly onWarning?: (message: string) => void;
}

/**
 * A transport's configuration entry: a config section module (`ConfigSectionModule`: name, schema,
 * defaults, starter text) that also builds the transport. The section reaches `fromConfig` exactly as the operator
 * wrote it (validated against `configSchema`, layers merged, no defaults filled in), so "not set"
 * stays distinguishable from "set to the default" (for SSH: `~/.ssh/config` decides what RUNE
 * does not).
 */
export interface TransportModule<Section extends object = Record<string, unknown>>
  extends ConfigSectionModule<Section> {
  /** Transport name and config section name (`ssh` reads `[ssh]`). */
  readonly name: string;
  /** Builds the transport from the section as written (`undefined` when no layer sets it). */
  fromConfig(
    section: Readonly<Section> | undefined,
    context: TransportConfigContext,
  ): Promise<Transport>;
}
