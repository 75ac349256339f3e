/**
 * The transports the `rune` CLI ships with, as config modules: each owns its config section
 * (`[ssh]`, `[ssm]`) and builds its transport lazily, so `rune --help` and local runs never load
 * ssh2 or the AWS SDK. The local transport's module comes with core.
 */
import type { TransportModule } from '@rune/transport';
import { sshTransportModule } from '@rune/transport-ssh/config';
import { ssmTransportModule } from '@rune/transport-ssm/config';

/** The transport modules of every CLI command: one list, so every command accepts the same file. */
export const CLI_TRANSPORT_MODULES: readonly TransportModule[] = [
  sshTransportModule,
  ssmTransportModule,
];
