import { defineConfig } from 'vitest/config';
import { runeVitestConfig } from '../../vitest.shared';

export default defineConfig(runeVitestConfig());
