/**
 * How a transport package plugs into configuration: it owns its config section (`[ssh]`,
 * `[ssm]`, ...) — the schema, the defaults and how a transport is built from it — so core and the
 * CLI never know a transport's keys, ports or instance maps. A package exports its module from a
 * light entry point (e.g. `@rune/transport-ssh/config`) that only imports TypeBox, so validating a
 * config file never loads ssh2 or the AWS SDK; `fromConfig` may import the heavy part lazily.
 */
import type { TSchema } from '@sinclair/typebox';
import type { Transport } from './transport.js';

/** What `fromConfig` may use besides its own section. */
export interface TransportConfigContext {
  /** Environment variables the transport may read (a passphrase variable, `AWS_*`, `HOME`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** RUNE's state directory, `$XDG_STATE_HOME/rune` (e.g. RUNE's own known_hosts). */
  readonly stateDir: string;
  /** Settings of other sections that apply to every transport. */
  readonly shared: {
    /** `[core] default_user`, when the operator set it. */
    readonly defaultUser?: string;
    /** `[remote_plugins] base_dir`, when the operator set it. */
    readonly remotePluginDir?: string;
  };
  /** The config file an error about a missing setting should tell the operator to edit. */
  readonly configFile?: string;
  /** True when the process may ask the operator on its terminal (e.g. a key passphrase). */
  readonly interactive: boolean;
  /** Receives one-line warnings for the operator (the CLI prints them, a server logs them). */
  readonly onWarning?: (message: string) => void;
}

/**
 * A transport's configuration entry. The section reaches `fromConfig` exactly as the operator
 * wrote it (validated against `configSchema`, no defaults filled in), so "not set" stays
 * distinguishable from "set to the default" (for SSH: `~/.ssh/config` decides what RUNE does not).
 */
export interface TransportModule<Section extends object = Record<string, unknown>> {
  /** Transport name and config section name (`ssh` reads `[ssh]`). */
  readonly name: string;
  /** TypeBox schema of the section as written: every key optional, unknown keys rejected. */
  readonly configSchema: TSchema;
  /** The default of every key that has one, as documented (for `rune config show` and docs). */
  readonly configDefaults: Readonly<Partial<Section>>;
  /** Builds the transport from the section as written (`undefined` when the file has none). */
  fromConfig(
    section: Readonly<Section> | undefined,
    context: TransportConfigContext,
  ): Promise<Transport>;
}
