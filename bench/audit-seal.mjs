#!/usr/bin/env node
// RUNE audit sealing cost (never part of the test suite). See bench/README.md, "Audit sealing".
//
//   node bench/audit-seal.mjs [--records 5000] [--rounds 7]
//
// CPU per record of what an audit sink does for each record, on the built @rune/core: the whole
// seal (`sealAuditRecord`) unsigned and signed (Ed25519), and the split the sinks use — the part
// done before the lock (`prepareAuditRecord`: bounding, canonical JSON of everything but the chain
// fields) and the part done holding it (`seal`: the chain fields, sha256, the signature) — plus the
// Ed25519 signature alone and the JSON.stringify of the stored record. Every row is measured in
// every round, in turn, so all rows see the same machine load; the median round is reported.
// No process, file or network is used.
import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

// @rune/core is not a dependency of the repository root: the built package, as bench/registry-check.mjs.
const root = new URL('..', import.meta.url).pathname;
const { AUDIT_GENESIS_HASH, createAuditSigner, prepareAuditRecord, sealAuditRecord } = await import(
  pathToFileURL(join(root, 'packages/core/dist/index.js')).href
);

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '7' },
  },
});
const records = Number(values.records);
const rounds = Number(values.rounds);

const { privateKey } = generateKeyPairSync('ed25519');
const signer = createAuditSigner(privateKey);
// A `run` record as the server writes one for a noop on one node.
const entry = {
  event: 'run',
  run_id: 'r-01jdx4s7q9m3v8k2c5h6n0p1t',
  operator: 'token:bench',
  action: 'noop',
  plugin: {
    version: '1.0.0',
    sha256: 'a'.repeat(64),
    path: '/srv/rune/plugins/noop',
    source: 'dir',
  },
  node: 'localhost',
  transport: 'local',
  status: 'success',
  error_code: null,
  error_message: null,
  duration_ms: 12,
  trace_id: '0af7651916cd43dd8448eb211c80319c',
  params: { sleep_ms: 0 },
  metadata: { principal: 'token:bench', via: 'api', shipped: true, connection_reused: false },
};
const timestamp = new Date().toISOString();

const rows = {
  'seal, unsigned (sealAuditRecord)': () => {
    let head = { hash: AUDIT_GENESIS_HASH, seq: 0 };
    for (let i = 0; i < records; i++) {
      const record = sealAuditRecord(entry, head, { timestamp, host: 'h', signer: undefined });
      head = { hash: record.hash, seq: i + 1 };
    }
  },
  'seal, signed (sealAuditRecord)': () => {
    let head = { hash: AUDIT_GENESIS_HASH, seq: 0 };
    for (let i = 0; i < records; i++) {
      const record = sealAuditRecord(entry, head, { timestamp, host: 'h', signer });
      head = { hash: record.hash, seq: i + 1 };
    }
  },
  'before the lock: prepareAuditRecord': () => {
    for (let i = 0; i < records; i++) prepareAuditRecord(entry, { host: 'h', signer });
  },
  'holding the lock: seal(), signed': (() => {
    const prepared = Array.from({ length: records }, () =>
      prepareAuditRecord(entry, { host: 'h', signer }),
    );
    return () => {
      let head = { hash: AUDIT_GENESIS_HASH, seq: 0 };
      for (const item of prepared) {
        const record = item.seal(head, timestamp);
        head = { hash: record.hash, seq: head.seq + 1 };
      }
    };
  })(),
  'Ed25519 signature alone': () => {
    const message = Buffer.from(`rune-audit-v2\n${'f'.repeat(64)}`);
    for (let i = 0; i < records; i++) sign(null, message, privateKey);
  },
  'JSON.stringify of the record': (() => {
    const record = sealAuditRecord(
      entry,
      { hash: AUDIT_GENESIS_HASH, seq: 0 },
      { timestamp, host: 'h', signer },
    );
    return () => {
      for (let i = 0; i < records; i++) JSON.stringify(record);
    };
  })(),
};

const samples = Object.fromEntries(Object.keys(rows).map((name) => [name, []]));
for (const run of Object.values(rows)) run(); // warm-up
for (let round = 0; round < rounds; round++) {
  for (const [name, run] of Object.entries(rows)) {
    const started = process.hrtime.bigint();
    run();
    samples[name].push(Number(process.hrtime.bigint() - started) / 1000 / records);
  }
}
const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
console.log(
  `\n${records} records x ${rounds} rounds, load average ${load}, Node ${process.version}`,
);
console.log('\n| per record | median µs | min µs | max µs |');
console.log('| --- | --- | --- | --- |');
for (const [name, list] of Object.entries(samples)) {
  const sorted = [...list].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  console.log(
    `| ${name} | ${median.toFixed(1)} | ${sorted[0].toFixed(1)} | ${sorted.at(-1).toFixed(1)} |`,
  );
}
