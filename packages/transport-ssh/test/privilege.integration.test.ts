/**
 * Run-as root (what core sends for manifests with `requires.privilege: root`) against a real sshd
 * and real sudo. A login user that already is root runs the plugin itself — shown on a node whose
 * PATH has no sudo at all (sshd `SetEnv PATH=` pointing at a directory of the tools a run needs,
 * sudo left out). Any other login user goes through non-interactive sudo, with
 * PRIVILEGE_PASSWORD_REQUIRED / PRIVILEGE_DENIED as before. Creates throwaway users and a sudoers
 * drop-in (checked with visudo) and removes them in afterAll; needs root, sudo and the shadow
 * tools: in CI a missing one fails this file loudly, locally it is skipped with the reason.
 */
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Transport } from '@rune/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SshdInstance, startSshd } from '../src/testing/index.js';
import {
  createTestUsers,
  describeWithPrerequisites,
  missingPrerequisites,
  onPath,
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
  tools: ['sudo', 'visudo', 'useradd', 'usermod', 'userdel', 'install'],
});

/** What the bootstrap, the sweep and the test plugins call; sudo is deliberately not here. */
const NODE_TOOLS = [
  'sh',
  'bash',
  'env',
  'id',
  'cat',
  'chmod',
  'mv',
  'rm',
  'mkdir',
  'mktemp',
  'stat',
  'sha256sum',
  'sleep',
  'grep',
  'setsid',
  'dirname',
  'basename',
  'tr',
];

function toolPath(tool: string): string {
  return execFileSync('sh', ['-c', `command -v ${tool}`])
    .toString()
    .trim();
}

const whoami = plugin('id -u; id -un; cat', 'privilege-whoami');

describeWithPrerequisites('run as root', missing, 'apt-get install sudo passwd', () => {
  describe('the login user is root, the node has no sudo', () => {
    let sshd: SshdInstance;
    let transport: Transport;
    let bin: string;

    beforeAll(async () => {
      bin = mkdtempSync(join(tmpdir(), 'rune-nosudo-bin-'));
      chmodSync(bin, 0o755);
      for (const tool of NODE_TOOLS) symlinkSync(toolPath(tool), join(bin, tool));
      sshd = await startSshd({ extraConfig: [`SetEnv PATH=${bin}`] });
      transport = transportFor(sshd);
    });
    afterAll(async () => {
      await transport?.close();
      await sshd?.stop();
      rmSync(bin, { recursive: true, force: true });
    });

    it('the node really has no sudo on its PATH', async () => {
      expect(onPath('sudo')).toBe(true); // this machine has one ...
      const result = await transport.exec(
        request(sshd.node(), plugin('command -v sudo || echo none; echo "$PATH"', 'no-sudo')),
      );
      // ... the node does not (root's shell start-up files may add directories without one)
      const [found, path] = text(result.stdout).split('\n');
      expect(found).toBe('none');
      expect(path?.split(':')).toContain(bin);
    });

    it('runAs root runs the plugin as root without sudo (ship, upload and the run)', async () => {
      const result = await transport.exec(
        request(sshd.node(), whoami, { runAs: 'root', stdin: Buffer.from('in') }),
      );
      expect(result).toMatchObject({ termination: 'exit', exitCode: 0 });
      expect(text(result.stdout)).toBe('0\nroot\nin');
      expect(result.metadata).toMatchObject({ run_as: 'root', shipped: true });
      const again = await transport.exec(request(sshd.node(), whoami, { runAs: 'root' }));
      expect(again.metadata).toMatchObject({ run_as: 'root', exec_round_trips: 1 });
    });

    it('preflight under runAs root: checked as root, a missing command still stops the run', async () => {
      const error = await rejection(
        transport.exec(
          request(sshd.node(), whoami, {
            runAs: 'root',
            preflight: { commands: ['sh', 'rune-missing-root'] },
          }),
        ),
      );
      expect(error.code).toBe('PLUGIN_PRECONDITION_FAILED');
      expect(error.details).toMatchObject({ missing_commands: ['rune-missing-root'] });
    });

    it('a timeout under runAs root is swept without sudo too', async () => {
      const escaped = uniqueSeconds();
      const result = await transport.exec(
        request(
          sshd.node(),
          plugin(`setsid sleep ${escaped} &\necho started; sleep 300`, 'privilege-sleep'),
          { runAs: 'root', timeoutMs: 1500 },
        ),
      );
      expect(result.termination).toBe('timeout');
      expect(result.containment).toMatchObject({ method: 'run-marker', complete: true });
      expect(await waitNoProcess(['sleep', escaped], 2000)).toEqual([]);
    });
  });

  describe('the login user is not root: non-interactive sudo', () => {
    const suffix = String(randomInt(10_000, 99_999));
    const allowed = `runeroot${suffix}`;
    const password = `runepw${suffix}`;
    const denied = `runenone${suffix}`;
    let users: TestUsers | undefined;
    let sshd: SshdInstance;
    let transport: Transport;

    beforeAll(async () => {
      // allowed: root without a password; password: root only with one; denied: only a
      // NOPASSWD rule for another user (so `sudo -n -l` can tell "denied" apart).
      users = createTestUsers(
        [allowed, password, denied],
        `${allowed} ALL=(root) NOPASSWD: ALL\n${password} ALL=(root) ALL\n${denied} ALL=(${allowed}) NOPASSWD: ALL\n`,
        `rune-test-root-${suffix}`,
      );
      sshd = await startSshd({ allowOtherUsers: true });
      transport = transportFor(sshd, { remoteCacheDir: '~/.cache/rune/plugins' });
    });

    afterAll(async () => {
      await transport?.close();
      await sshd?.stop();
      rmSync(join('/root/.cache/rune/plugins', whoami.sha256), { force: true });
      users?.remove();
    });

    it('a NOPASSWD rule: the plugin runs as root, cached in root’s private dir', async () => {
      const result = await transport.exec(
        request(sshd.node({ user: allowed }), whoami, { runAs: 'root' }),
      );
      expect(text(result.stdout)).toBe('0\nroot\n{}');
      expect(existsSync(join('/root/.cache/rune/plugins', whoami.sha256))).toBe(true);
    });

    it('a rule that needs a password → PRIVILEGE_PASSWORD_REQUIRED', async () => {
      const error = await rejection(
        transport.exec(request(sshd.node({ user: password }), whoami, { runAs: 'root' })),
      );
      expect(error.code).toBe('PRIVILEGE_PASSWORD_REQUIRED');
    });

    it('no rule for root → PRIVILEGE_DENIED', async () => {
      const error = await rejection(
        transport.exec(request(sshd.node({ user: denied }), whoami, { runAs: 'root' })),
      );
      expect(error.code).toBe('PRIVILEGE_DENIED');
    });
  });
});
