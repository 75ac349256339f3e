/**
 * The local transport's `TransportModule`: like every transport it owns a config section,
 * `[local]`, which has no keys yet (so any key in it is an unknown key). `fromConfig` builds the
 * transport that runs plugins as child processes of this machine.
 */
import type { TransportModule } from '@rune/transport';
import { Type } from '@sinclair/typebox';
import { LOCAL_TRANSPORT } from '../planning/targets.js';
import { createLocalTransport } from './local-transport.js';

/** The `[local]` section: no keys. */
export const LocalConfigSectionSchema = Type.Object({}, { additionalProperties: false });

/** The local transport's module (core registers it unless a caller replaces `local`). */
export const localTransportModule: TransportModule<Record<string, never>> = {
  name: LOCAL_TRANSPORT,
  configSchema: LocalConfigSectionSchema,
  configDefaults: {},
  fromConfig: async () => createLocalTransport(),
};
