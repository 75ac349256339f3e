/**
 * run_as through non-interactive sudo, against real sudo and real users. Creates two throwaway
 * users and one sudoers drop-in (checked with visudo before it is installed), and removes all of
 * them in afterAll. Needs root, sudo and the shadow tools (`apt-get install sudo`): in CI a
 * missing one fails this file loudly; locally the suite is skipped with the reason in its name.
 */
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Transport } from '@rune/transport';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type SshdInstance, startSshd } from '../src/testing/index.js';
import {
  createTestUsers,
  describeWithPrerequisites,
  missingPrerequisites,
  plugin,
  rejection,
  request,
  type TestUsers,
  text,
  transportFor,
  uniqueSeconds,
  waitNoProcess,
} from './helpers.js';

const missing = missingPrerequisites({
  root: true,
  tools: ['sudo', 'visudo', 'useradd', 'usermod', 'userdel', 'install', 'pgrep'],
});

describeWithPrerequisites(
  'run_as through sudo -n',
  missing,
  'apt-get install sudo passwd procps',
  () => {
    const suffix = String(randomInt(10_000, 99_999));
    const login = `runelogin${suffix}`;
    const target = `runetarget${suffix}`;
    let users: TestUsers | undefined;
    let sshd: SshdInstance;
    let transport: Transport;

    beforeAll(async () => {
      // login may become target without a password; root only with a password; nobody else.
      users = createTestUsers(
        [login, target],
        `${login} ALL=(${target}) NOPASSWD: ALL\n${login} ALL=(root) ALL\n`,
        `rune-test-${suffix}`,
      );
      sshd = await startSshd({ allowOtherUsers: true });
      transport = transportFor(sshd, { remoteCacheDir: '~/.cache/rune/plugins' });
    });

    afterAll(async () => {
      await transport?.close();
      await sshd?.stop();
      users?.remove();
    });

    const whoami = plugin('id -un; cat', 'whoami');

    it('runs the plugin as the run_as user (cached in that user’s private dir)', async () => {
      const result = await transport.exec(
        request(sshd.node({ user: login }), whoami, { runAs: target, stdin: Buffer.from('in') }),
      );
      expect(text(result.stdout)).toBe(`${target}\nin`);
      expect(result.metadata).toMatchObject({ run_as: target, shipped: true });
      expect(existsSync(join(`/home/${target}`, '.cache/rune/plugins', whoami.sha256))).toBe(true);
      const again = await transport.exec(
        request(sshd.node({ user: login }), whoami, { runAs: target }),
      );
      expect(again.metadata).toMatchObject({ exec_round_trips: 1 });
    });

    it('a rule that needs a password → PRIVILEGE_PASSWORD_REQUIRED', async () => {
      const error = await rejection(
        transport.exec(request(sshd.node({ user: login }), whoami, { runAs: 'root' })),
      );
      expect(error.code).toBe('PRIVILEGE_PASSWORD_REQUIRED');
    });

    it('no rule at all for that user → PRIVILEGE_DENIED', async () => {
      const error = await rejection(
        transport.exec(request(sshd.node({ user: login }), whoami, { runAs: 'daemon' })),
      );
      expect(error.code).toBe('PRIVILEGE_DENIED');
    });

    it('a timeout sweeps the run_as processes too, setsid child included', async () => {
      const escaped = uniqueSeconds();
      const result = await transport.exec(
        request(
          sshd.node({ user: login }),
          plugin(`setsid sleep ${escaped} &\necho started; sleep 300`, 'sudo-sleep'),
          { runAs: target, timeoutMs: 1500 },
        ),
      );
      expect(result.termination).toBe('timeout');
      expect(result.containment).toMatchObject({ method: 'run-marker', complete: true });
      expect(result.containment?.killed).toBeGreaterThanOrEqual(3);
      expect(await waitNoProcess(['sleep', escaped], 2000)).toEqual([]);
      let left = '';
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          left = execFileSync('pgrep', ['-u', target, '-x', 'sleep']).toString().trim();
        } catch {
          left = '';
        }
        if (left === '') break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(left).toBe('');
    });

    it('an invalid run_as name never reaches a command line', async () => {
      const error = await rejection(
        transport.exec(
          request(sshd.node({ user: login }), whoami, { runAs: 'root; touch /tmp/pwned' }),
        ),
      );
      expect(error.code).toBe('INVALID_ARGUMENT');
    });
  },
);
