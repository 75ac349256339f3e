import { describeTransportConformance } from '@rune/transport/testing';
import { createLocalTransport } from '../src/transport/local-transport.js';

describeTransportConformance('local', async () => ({
  transport: createLocalTransport({ killGraceMs: 300 }),
  node: { name: 'localhost' },
  unreachableNode: { name: 'no-such-node.invalid' },
  expectedUnreachableCodes: ['HOST_UNREACHABLE'],
}));
