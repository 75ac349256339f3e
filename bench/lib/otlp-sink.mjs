// A minimal OTLP/HTTP receiver for the benchmarks, in a process of its own (the benchmarks block
// their event loop in spawnSync, so an in-process server could not answer the exporter).
//
//   startOtlpSink() -> { endpoint, stop() -> spans received }
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

if (process.argv[2] === '--serve') {
  let spans = 0;
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      try {
        for (const resource of JSON.parse(body).resourceSpans ?? [])
          for (const scope of resource.scopeSpans ?? []) spans += (scope.spans ?? []).length;
      } catch {}
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
  process.stdin.on('end', () => {
    process.stdout.write(`${spans}\n`);
    server.close(() => process.exit(0));
  });
  process.stdin.resume();
}

/** Starts the receiver; resolves with its endpoint and a stop() that returns the span count. */
export function startOtlpSink() {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let output = '';
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const [port] = output.split('\n');
      if (output.includes('\n') && port !== undefined && resolve !== null) {
        const done = resolve;
        resolve = null;
        done({
          endpoint: `http://127.0.0.1:${port}/v1/traces`,
          stop: () =>
            new Promise((stopped) => {
              child.once('exit', () => stopped(Number(output.trim().split('\n').at(-1))));
              child.stdin.end();
            }),
        });
      }
    });
  });
}
