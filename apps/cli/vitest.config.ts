import { defineConfig } from 'vitest/config';
import { runeVitestConfig } from '../../vitest.shared';

// The integration tests spawn the built CLI dozens of times; on a loaded machine one spawn can
// take seconds, so the per-test budget is generous (each test still ends by itself).
export default defineConfig(runeVitestConfig({ testTimeout: 180_000 }));
