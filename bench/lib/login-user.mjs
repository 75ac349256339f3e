// The user the benchmark's SSH sessions log in as.
//
// Every SSH command runs through the login user's shell, and bash sources ~/.bashrc for commands
// run by sshd. On a developer machine that file can be expensive (root here runs `pyenv init`:
// about 200 ms of CPU per SSH command). All "hosts" of the benchmark share the control node's
// cores, so that cost would be paid 100 times on the same 2 cores, by RUNE and OpenSSH alike,
// and would measure the login shell rather than the transports. When run as root, the benchmark
// therefore creates a throw-away service account with /bin/sh as its shell (like a typical fleet
// node's automation user) and deletes it at the end; otherwise (or with --login-user current) it
// logs in as the current user and says what its login shell costs.
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { homedir, userInfo } from 'node:os';

function passwdEntry(name) {
  const line = execFileSync('getent', ['passwd', name]).toString().trim();
  const fields = line.split(':');
  return { name, home: fields[5], shell: fields[6] };
}

/**
 * Returns { name, home, shell, created, remove() }. `mode` is 'auto' (a temporary user when
 * root, else the current user) or 'current'.
 */
export function benchLoginUser(mode = 'auto') {
  const current = userInfo();
  if (mode === 'current' || current.uid !== 0) {
    return {
      name: current.username,
      home: homedir(),
      shell: current.shell ?? '?',
      created: false,
      remove: () => undefined,
    };
  }
  const name = `runebench${randomInt(10_000, 99_999)}`;
  execFileSync('useradd', ['-m', '-s', '/bin/sh', name]);
  // useradd locks the account ('!'), which sshd refuses even for keys; '*' = no password.
  execFileSync('usermod', ['-p', '*', name]);
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    try {
      execFileSync('pkill', ['-KILL', '-u', name], { stdio: 'ignore' });
    } catch {
      // no process left
    }
    try {
      execFileSync('userdel', ['-r', '-f', name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  };
  process.once('exit', remove);
  return { ...passwdEntry(name), created: true, remove };
}
