import { describeTransportConformance } from '@rune/transport/testing';
import { refusedEndpoint, startSshd } from '../src/testing/index.js';
import { transportFor } from './helpers.js';

describeTransportConformance(
  'ssh (real OpenSSH sshd)',
  async () => {
    const sshd = await startSshd();
    const closed = await refusedEndpoint();
    return {
      transport: transportFor(sshd),
      node: sshd.node(),
      unreachableNode: {
        name: 'closed-port',
        address: closed.address,
        port: closed.port,
        user: sshd.user,
      },
      expectedUnreachableCodes: ['CONNECTION_REFUSED'],
      cleanup: () => sshd.stop(),
    };
  },
  // R22 (preflight) is implemented in this transport's own branch; until it lands here the
  // suite runs it as an expected failure.
  { knownFailures: ['R22'] },
);
