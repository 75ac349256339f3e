// The comparison side of the fan-out benchmark: N parallel OpenSSH `ssh` clients doing the same
// ship-and-run RUNE does — one connection per host; "fresh" ships the plugin (base64 in the
// command, verified by sha256, cached in the benchmark's own directory) and runs it with the RCS
// request on stdin; "cached" verifies and runs the already-cached plugin. Run under
// /usr/bin/time by fanout.mjs so the CPU of every ssh client (reaped children) is counted.
//
// usage: node ssh-parallel.mjs <spec.json> <fresh|cached>
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const [specFile, mode] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specFile, 'utf8'));
const plugin = readFileSync(spec.pluginFile);
const request = readFileSync(spec.requestFile);
// The benchmark's own cache dir, relative to the login user's home (safe characters only).
if (!/^[A-Za-z0-9._][A-Za-z0-9._/-]*$/.test(spec.cacheDir) || spec.cacheDir.includes('..'))
  throw new Error(`unsafe cacheDir ${spec.cacheDir}`);
const dir = `"$HOME"/'${spec.cacheDir}'`;
const file = `${dir}/${spec.sha256}`;
const verify = `printf '%s  %s\\n' ${spec.sha256} ${file} | sha256sum -c --quiet --status`;
const command =
  mode === 'fresh'
    ? `umask 077; mkdir -p ${dir} && printf %s '${plugin.toString('base64')}' | base64 -d > ${file}.$$ && chmod 700 ${file}.$$ && mv -f ${file}.$$ ${file} && ${verify} && exec ${file}`
    : `${verify} && exec ${file}`;

function runOne(host) {
  return new Promise((resolve) => {
    const child = spawn(
      'ssh',
      [
        '-F',
        '/dev/null',
        '-o',
        'BatchMode=yes',
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        `UserKnownHostsFile=${spec.knownHostsFile}`,
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        'LogLevel=ERROR',
        '-i',
        spec.identityFile,
        '-p',
        String(host.port),
        `${spec.user}@${host.address}`,
        command,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.stdin.end(request);
    child.on('close', (code) => {
      let ok = code === 0;
      try {
        ok = ok && JSON.parse(stdout).payload?.result === 'success';
      } catch {
        ok = false;
      }
      resolve({ host: host.name, ok, code, stderr: stderr.slice(0, 300) });
    });
  });
}

const started = performance.now();
const results = await Promise.all(spec.hosts.map(runOne));
const wallMs = performance.now() - started;
const failed = results.filter((r) => !r.ok);
process.stdout.write(
  `${JSON.stringify({ hosts: results.length, failed: failed.length, firstFailure: failed[0] ?? null, wallMs })}\n`,
);
process.exitCode = failed.length === 0 ? 0 : 1;
