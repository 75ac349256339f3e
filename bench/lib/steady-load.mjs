// A steady, open-loop HTTP load (benchmarks only, never part of the test suite): one request every
// 1/rate seconds, whether or not earlier ones were answered, over a keep-alive pool of
// `connections` sockets (node:http's Agent). Each latency is measured from the request's
// scheduled time, so a stall delays every request scheduled during it and is counted for each of
// them (no coordinated omission), and from the moment it was handed to the agent.
//
// Why not autocannon's `overallRate` for latency: autocannon 8 limits each connection to
// rate/connections requests per second and resets the count every second, so each second's quota
// leaves in a burst at full concurrency at the start of the second, and it records each latency
// with a coordinated-omission correction whose interval is ceil(1 / per-connection rate) = 1 ms,
// which adds one synthetic sample per millisecond of every slow answer (a 300 ms answer counts
// 300 times). Its percentiles are neither the steady-rate latencies nor the real ones.
import http from 'node:http';
import { pathToFileURL } from 'node:url';

/** p50/p90/p99/max of `values` in ms (rounded to 0.1). */
function summary(values) {
  const sorted = values.slice().sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const round = (value) => Number(value.toFixed(1));
  return {
    p50: round(at(0.5)),
    p90: round(at(0.9)),
    p99: round(at(0.99)),
    max: round(sorted.at(-1) ?? 0),
  };
}

/**
 * Sends `rate` requests per second for `seconds` to `url` (POST `body` as JSON, `headers`); resolves
 * with the counts and the latency summaries once every request was answered or failed.
 */
export async function steadyLoad({ url, headers, body, rate, seconds, connections = 20 }) {
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const payload = JSON.stringify(body);
  const total = Math.round(rate * seconds);
  const fromSchedule = [];
  const fromSend = [];
  const statuses = new Map();
  let errors = 0;
  const started = performance.now();
  await new Promise((resolve) => {
    let sent = 0;
    let settled = 0;
    const settle = () => {
      if (++settled === total) resolve();
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total && started + (sent * 1000) / rate <= now) {
        const scheduled = started + (sent * 1000) / rate;
        sent++;
        const handed = performance.now();
        const request = http.request(
          {
            host: target.hostname,
            port: target.port,
            path: target.pathname,
            method: 'POST',
            agent,
            headers: { ...headers, 'content-length': Buffer.byteLength(payload) },
          },
          (response) => {
            response.resume();
            response.on('end', () => {
              const end = performance.now();
              fromSchedule.push(end - scheduled);
              fromSend.push(end - handed);
              statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
              settle();
            });
          },
        );
        request.on('error', () => {
          errors++;
          settle();
        });
        request.end(payload);
      }
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  agent.destroy();
  const ok = [...statuses].filter(([code]) => code >= 200 && code < 300);
  return {
    requests: total,
    seconds: (performance.now() - started) / 1000,
    '2xx': ok.reduce((sum, [, count]) => sum + count, 0),
    non2xx: [...statuses]
      .filter(([code]) => code < 200 || code >= 300)
      .reduce((s, [, c]) => s + c, 0),
    errors,
    fromSchedule: summary(fromSchedule),
    fromSend: summary(fromSend),
  };
}

// As a program (bench/server.mjs runs it in its own process, as a client would be):
//   node bench/lib/steady-load.mjs '{"url":...,"headers":{...},"body":{...},"rate":200,"seconds":30}'
// prints the result as one JSON line.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await steadyLoad(JSON.parse(process.argv[2] ?? '{}'));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
