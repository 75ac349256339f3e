/**
 * The kit against its fixtures: a good plugin passes, and each deliberately broken plugin fails
 * for the right reason, with an explanation (what was expected, what came, how to fix it).
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkPlugin, discoverPlugins, type PluginReport } from '../src/index.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

async function check(name: string, shellcheck = false): Promise<PluginReport> {
  const discovery = await discoverPlugins(`${fixtures}${name}`);
  try {
    expect(discovery.plugins).toHaveLength(1);
    return await checkPlugin(discovery.plugins[0]!, { shellcheck });
  } finally {
    await discovery.cleanup();
  }
}

const failures = (report: PluginReport) => report.checks.filter((check) => check.status === 'fail');

/** Every failure explains itself. */
function expectExplained(report: PluginReport): void {
  for (const failure of failures(report)) {
    expect(failure.message, failure.name).toBeTruthy();
    expect(failure.expected, failure.name).toBeTruthy();
    expect(failure.actual, failure.name).toBeTruthy();
    expect(failure.fix, failure.name).toBeTruthy();
  }
}

describe('rune-plugin-test fixtures', () => {
  it('passes a well-behaved plugin (manifest, cases file, generated cases, shellcheck)', async () => {
    const report = await check('good.sh', true);
    expect(failures(report), JSON.stringify(failures(report), null, 2)).toEqual([]);
    expect(report.passed).toBe(true);
    expect(report.manifest).toBe('valid');
    const names = report.checks.map((entry) => entry.name);
    expect(names).toContain('restarts nginx');
    expect(names).toContain('generated: malformed JSON on stdin');
    expect(names).toContain('generated: unknown schema_version');
    expect(names).toContain('generated: parameter "service" of the wrong type');
    expect(names).toContain('generated: "service" longer than maxLength (64)');
    expect(names).toContain('generated: defaults, dry-run');
    // shellcheck is installed wherever the tests run (the test command installs it): a pass,
    // never a skip that would hide a linter that stopped running.
    expect(report.checks.find((entry) => entry.name === 'shellcheck')?.status).toBe('pass');
  });

  it('fails a plugin with a shellcheck finding, naming the check id (SC2164)', async () => {
    const report = await check('shellcheck-finding.sh', true);
    expect(report.passed).toBe(false);
    expect(failures(report).map((entry) => entry.name)).toEqual(['shellcheck']);
    const lint = failures(report)[0];
    expect(lint?.actual).toContain('[SC2164]');
    expect(lint?.details?.findings).toEqual([
      expect.stringMatching(/:8:1: warning: .*\[SC2164\]$/),
    ]);
    expectExplained(report);
    // The same plugin passes everything else: only the lint makes it fail.
    expect((await check('shellcheck-finding.sh', false)).passed).toBe(true);
  });

  it('passes a plugin without a manifest, with a warning that the manifest is inferred', async () => {
    const report = await check('manifestless.sh');
    expect(report.passed).toBe(true);
    expect(report.manifest).toBe('inferred');
    expect(report.checks[0]).toMatchObject({ name: 'manifest', status: 'warn' });
  });

  it('fails text before the JSON result with OUTPUT_TEXT_BEFORE_JSON', async () => {
    const report = await check('text-before-json.sh');
    expect(report.passed).toBe(false);
    const failed = failures(report);
    expect(failed.length).toBeGreaterThan(0);
    for (const failure of failed) expect(failure.message).toMatch(/^OUTPUT_TEXT_BEFORE_JSON/);
    expect(failed[0]!.fix).toMatch(/stderr/);
    expectExplained(report);
  });

  it('fails two JSON documents with OUTPUT_MULTIPLE_DOCUMENTS', async () => {
    const report = await check('two-documents.sh');
    const failed = failures(report);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.some((failure) => failure.message?.startsWith('OUTPUT_MULTIPLE_DOCUMENTS'))).toBe(
      true,
    );
    expectExplained(report);
  });

  it('fails a failure result with exit 0 as EXIT_CODE_MISMATCH', async () => {
    const report = await check('exit-zero-failure.sh');
    const failed = failures(report);
    expect(failed.some((failure) => failure.message?.startsWith('EXIT_CODE_MISMATCH'))).toBe(true);
    expectExplained(report);
  });

  it('fails a plugin that crashes on bad input instead of answering exit 2', async () => {
    const report = await check('crash-on-bad-input.sh');
    const failed = failures(report).map((failure) => failure.name);
    expect(failed).toContain('generated: malformed JSON on stdin');
    expect(failed).toContain('generated: unknown schema_version');
    expect(failed).not.toContain('generated: defaults');
    expectExplained(report);
  });

  it('fails an invalid manifest and lists the violations', async () => {
    const report = await check('invalid-manifest.sh');
    expect(report.manifest).toBe('invalid');
    const manifest = report.checks[0]!;
    expect(manifest).toMatchObject({ name: 'manifest is valid MRS v1', status: 'fail' });
    expect(manifest.actual).toMatch(/^\/version: /m);
    expect(manifest.actual).toMatch(/^\/timeout_ms: /m);
    const error = manifest.details?.error as { details?: { violations?: { pointer: string }[] } };
    const pointers = (error.details?.violations ?? []).map((violation) => violation.pointer);
    expect(pointers).toEqual(expect.arrayContaining(['/version', '/timeout_ms']));
    expectExplained(report);
  });

  it('fails a plugin that runs past its manifest timeout, and kills it', async () => {
    const started = Date.now();
    const report = await check('slow.sh');
    const failed = failures(report);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]!.message).toMatch(/ran past its timeout of 1000 ms/);
    expect(Date.now() - started).toBeLessThan(20_000);
    expectExplained(report);
  });

  it('fails a plugin that calls a mutating command in dry-run', async () => {
    const report = await check('dry-run-mutates.sh');
    const failed = failures(report);
    expect(failed.map((failure) => failure.name)).toEqual(['generated: defaults, dry-run']);
    expect(failed[0]!.message).toMatch(
      /dry-run called mutating command\(s\): `systemctl restart docker`/,
    );
    expect(failed[0]!.message).toMatch(/dry-run wrote files outside TMPDIR: \$HOME\/\.restarted/);
    expectExplained(report);
  });

  it('fails a plugin that lets a subcommand print to stdout, naming the command', async () => {
    const report = await check('subcommand-stdout.sh');
    const failed = failures(report);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]!.message).toMatch(/^OUTPUT_TEXT_BEFORE_JSON/);
    expect(failed[0]!.fix).toMatch(/output of `systemctl is-active docker`/);
    expectExplained(report);
  });
});
