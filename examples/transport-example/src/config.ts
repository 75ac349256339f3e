/**
 * The `[workdir]` config section: what `rune` needs to build this transport from a config file.
 * A light entry point (`@rune-examples/transport-example/config`): it imports only TypeBox and
 * `@rune/transport`; `fromConfig` loads the transport itself, by package name, when a node needs it.
 */
import type { TransportModule } from '@rune/transport';
import { type Static, Type } from '@sinclair/typebox';

/** `[workdir]` as an operator may write it: every key optional, unknown keys rejected. */
export const WorkdirConfigSectionSchema = Type.Object(
  {
    root_dir: Type.Optional(
      Type.String({ minLength: 1, description: 'One subdirectory per node (control-node path).' }),
    ),
    shell: Type.Optional(Type.String({ minLength: 1, description: 'Shell that starts plugins.' })),
    max_concurrent_execs_per_node: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

/** `[workdir]` as written. */
export type WorkdirConfigSection = Static<typeof WorkdirConfigSectionSchema>;

/** The transport's module: schema, documented defaults, and how to build it from the section. */
export const workdirTransportModule: TransportModule<WorkdirConfigSection> = {
  name: 'workdir',
  configSchema: WorkdirConfigSectionSchema,
  configDefaults: {
    root_dir: '~/.local/state/rune/workdir',
    shell: '/bin/sh',
    max_concurrent_execs_per_node: 8,
  },
  async fromConfig(section, context) {
    const { createWorkdirTransport } = await import('@rune-examples/transport-example');
    // The one default this module applies itself: the transport has no default root directory.
    const rootDir = context.resolveLocalPath(section?.root_dir ?? `${context.stateDir}/workdir`);
    return createWorkdirTransport({
      rootDir,
      ...(section?.shell === undefined ? {} : { shell: section.shell }),
      ...(section?.max_concurrent_execs_per_node === undefined
        ? {}
        : { maxConcurrentExecsPerNode: section.max_concurrent_execs_per_node }),
    });
  },
};
