/**
 * The transports the `rune` CLI ships with, as config modules: each owns its config section
 * (`[ssh]`, `[ssm]`) and builds its transport lazily, so `rune --help` and local runs never load
 * ssh2 or the AWS SDK. The local transport's module comes with core. Besides the transports, the
 * other packages whose sections a CLI config may hold: `[server]` (`rune serve`), from the light
 * `@rune/server/config` entry point (TypeBox only; Fastify and the store load with `rune serve`).
 */
import { serverConfigModule } from '@rune/server/config';
import type { ConfigSectionModule, TransportModule } from '@rune/transport';
import { sshTransportModule } from '@rune/transport-ssh/config';
import { ssmTransportModule } from '@rune/transport-ssm/config';

/** The transport modules of every CLI command: one list, so every command accepts the same file. */
export const CLI_TRANSPORT_MODULES: readonly TransportModule[] = [
  sshTransportModule,
  ssmTransportModule,
];

/** The other config sections every CLI command accepts (`[server]`): one list, like the above. */
export const CLI_CONFIG_MODULES: readonly ConfigSectionModule[] = [serverConfigModule];
