#!/usr/bin/env node
// Makes sure the system tools the test suite talks to are present: a real OpenSSH server
// (tests start their own sshd on loopback), the OpenSSH client tools, shellcheck (plugin lint),
// sudo (privilege tests), jq (one of the two JSON paths of the Bash plugin library), python3
// (the Python plugin example of the BPCS spec), procps (leftover-process checks) and
// ansible-inventory (ansible-core: the reference RUNE's Ansible inventory reader is compared with)
// and groff (the man page test), chromium (the dashboard's browser tests). On Debian/Ubuntu as root, missing ones are installed with apt-get;
// otherwise this prints the exact command to run and fails, rather than letting tests skip.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const tools = [
  { name: 'sshd', paths: ['/usr/sbin/sshd'], pkg: 'openssh-server' },
  { name: 'ssh-keygen', paths: ['/usr/bin/ssh-keygen'], pkg: 'openssh-client' },
  { name: 'shellcheck', paths: ['/usr/bin/shellcheck'], pkg: 'shellcheck' },
  { name: 'sudo', paths: ['/usr/bin/sudo'], pkg: 'sudo' },
  { name: 'jq', paths: ['/usr/bin/jq'], pkg: 'jq' },
  { name: 'python3', paths: ['/usr/bin/python3'], pkg: 'python3-minimal' },
  { name: 'tar', paths: ['/usr/bin/tar', '/bin/tar'], pkg: 'tar' },
  { name: 'gzip', paths: ['/usr/bin/gzip', '/bin/gzip'], pkg: 'gzip' },
  { name: 'pgrep', paths: ['/usr/bin/pgrep'], pkg: 'procps' },
  // ansible-core, not the `ansible` package: it holds ansible-inventory without ~500 MB of collections.
  { name: 'ansible-inventory', paths: ['/usr/bin/ansible-inventory'], pkg: 'ansible-core' },
  // groff renders the man page in its test (warnings fail it).
  { name: 'groff', paths: ['/usr/bin/groff'], pkg: 'groff-base' },
  // chromium: the dashboard's browser tests drive it with playwright-core (no browser download).
  { name: 'chromium', paths: ['/usr/bin/chromium'], pkg: 'chromium' },
];

const onPath = (name) =>
  spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
const missing = tools.filter(
  (tool) => !tool.paths.some((path) => existsSync(path)) && !onPath(tool.name),
);

if (missing.length === 0) process.exit(0);

const packages = [...new Set(missing.map((tool) => tool.pkg))];
const command = `apt-get update && apt-get install -y ${packages.join(' ')}`;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot || !onPath('apt-get')) {
  console.error(
    `rune tests need: ${missing.map((tool) => tool.name).join(', ')}.\nInstall them, e.g.: sudo ${command}`,
  );
  process.exit(1);
}
console.error(`installing test tools: ${packages.join(' ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], {
  stdio: 'inherit',
  env,
});
