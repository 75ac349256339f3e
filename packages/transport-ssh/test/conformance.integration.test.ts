import { describeTransportConformance } from '@rune/transport/testing';
import { refusedEndpoint, startSshd } from '../src/testing/index.js';
import { transportFor } from './helpers.js';

describeTransportConformance('ssh (real OpenSSH sshd)', async () => {
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
});
