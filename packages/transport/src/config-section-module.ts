/**
 * How a package owns a section of RUNE's TOML configuration (`[ssh]`, `[server]`, ...): its name,
 * its TypeBox schema, the defaults it applies and the text `rune config init` shows for it. Core's
 * `loadConfig` knows no key of such a section: it validates the section against `configSchema`
 * (an unknown key or a wrong type is an INVALID_CONFIG error naming file, line, column and key),
 * merges the layers (files, `RUNE_<SECTION>_<KEY>` variables, flags) key by key, expands the
 * control-node paths the module names, and hands the section on as written — the module's
 * package applies its own defaults, once. A transport's `TransportModule` is one of these plus
 * `fromConfig`. Like a transport's config entry point, a package exports its module from a light
 * entry point (TypeBox and this package only), so validating a config never loads the heavy part.
 */
import type { TSchema } from '@sinclair/typebox';

/** A config section owned by a package (see the module comment). */
export interface ConfigSectionModule<Section extends object = Record<string, unknown>> {
  /** The section name (`server` reads `[server]`); for a transport, also the transport name. */
  readonly name: string;
  /**
   * TypeBox schema of the section as written: an object with `additionalProperties: false`,
   * every key optional. Keys are snake_case; a key of type object (a map such as
   * `[ssm.instances]`) is merged entry by entry across layers.
   */
  readonly configSchema: TSchema;
  /**
   * The default of every key that has one, as the package applies it (for `rune config show`,
   * `rune config init` and docs). Display only: the loader fills none of them in.
   */
  readonly configDefaults: Readonly<Partial<Section>>;
  /**
   * Keys whose values are control-node paths: the loader expands `~` and resolves a relative
   * path against the working directory, as it does for core's own path keys. A value with a URL
   * scheme (`postgres://...`) is left as written. Transports resolve theirs themselves through
   * `TransportConfigContext.resolveLocalPath` and leave this unset.
   */
  readonly localPathKeys?: readonly string[];
  /**
   * The section's body in the starter config of `rune config init`, without the `[name]` header:
   * every key as a commented `# key = value` line (its default or an example), with comments.
   * Without it the starter file shows each key that has a default, generated from the schema.
   */
  readonly configTemplate?: string;
}
