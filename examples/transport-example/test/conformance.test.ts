import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeTransportConformance } from '@rune/transport/testing';
import { createWorkdirTransport } from '../src/index.js';

describeTransportConformance(
  'workdir (example)',
  () => {
    const rootDir = mkdtempSync(join(tmpdir(), 'rune-workdir-'));
    mkdirSync(join(rootDir, 'node-a'));
    return {
      transport: createWorkdirTransport({ rootDir }),
      node: { name: 'node-a' },
      unreachableNode: { name: 'node-that-was-never-provisioned' },
      expectedUnreachableCodes: ['HOST_UNREACHABLE'],
      cleanup: () => rmSync(rootDir, { recursive: true, force: true }),
    };
  },
  // The example does not implement preflight (R22): the suite runs it as an expected failure,
  // and turns red the day the example implements it.
  { knownFailures: ['R22'] },
);
