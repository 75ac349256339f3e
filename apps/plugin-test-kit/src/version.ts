/** Version of @rune/plugin-test-kit, sent as RCS `sender.version` and printed in reports. */
export const TEST_KIT_VERSION = '0.1.0';
