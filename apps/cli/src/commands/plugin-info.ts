/** `rune plugin-info <action>`: version, source, sha256, parameters, requirements, shadowing. */
import type { PluginCandidate } from '@rune/core';
import type { CliIo } from '../cli-io.js';
import { terminalSafe } from '../render/terminal-text.js';
import { type CommonArgs, createCliRune, guarded, loadCliConfig } from './command-context.js';

function candidateJson(candidate: PluginCandidate) {
  return {
    path: candidate.path,
    manifest_path: candidate.manifestPath,
    source: candidate.source,
    sha256: candidate.sha256,
    size: candidate.size,
    executable: candidate.executable,
    manifest: candidate.manifest,
    manifest_error: candidate.manifestError?.toJSON() ?? null,
    // Libraries inlined by `# @rune-include` lines: sha256 and size are those of the assembled file.
    includes: candidate.includes.map(({ name, path, sha256 }) => ({ name, path, sha256 })),
    assembly_error: candidate.assemblyError?.toJSON() ?? null,
  };
}

/** Prints everything known about one action; returns the exit code. */
export function pluginInfoCommand(
  args: CommonArgs & { action: string },
  io: CliIo,
): Promise<number> {
  return guarded(io, args, async () => {
    const rune = createCliRune(io, loadCliConfig(io, args), args);
    const info = rune.pluginInfo(args.action);
    const [winner, ...shadowed] = info.candidates;
    if (args.output === 'json' || args.output === 'jsonl') {
      const document = {
        action: info.action,
        plugin: winner === undefined ? null : candidateJson(winner),
        shadowed: shadowed.map(candidateJson),
        problem: info.problem,
      };
      io.out(
        args.output === 'json'
          ? `${JSON.stringify(document, null, 2)}\n`
          : `${JSON.stringify(document)}\n`,
      );
      return 0;
    }
    if (winner === undefined) return 0;
    const manifest = winner.manifest;
    const lines: string[] = [`${info.action}`];
    const row = (key: string, value: string) => lines.push(`  ${key.padEnd(14)}${value}`);
    row('version', manifest?.version ?? '?');
    if (manifest !== null) row('description', manifest.description);
    row('source', `${winner.source} — ${winner.path}`);
    row('manifest', winner.manifestPath ?? '(none — inferred)');
    row('sha256', winner.sha256);
    row('executable', winner.executable ? 'yes' : 'NO (chmod +x)');
    if (manifest !== null) {
      row('timeout', `${manifest.timeout_ms} ms`);
      row(
        'flags',
        `idempotent=${manifest.idempotent} dry_run=${manifest.supports_dry_run} dangerous=${manifest.dangerous}`,
      );
      row(
        'requirements',
        `privilege ${manifest.requirements.privilege}; commands: ${manifest.requirements.commands.join(', ') || 'none'}`,
      );
      const parameters = Object.entries(manifest.parameters.properties);
      const required = new Set(manifest.parameters.required ?? []);
      lines.push('  parameters');
      if (parameters.length === 0) {
        lines.push(
          manifest.parameters.additionalProperties === true
            ? '    (any, undeclared)'
            : '    (none)',
        );
      }
      for (const [name, parameter] of parameters) {
        const facts = [
          parameter.type === 'array'
            ? `array of ${parameter.items?.type ?? 'scalar'}`
            : parameter.type,
          required.has(name) ? 'required' : 'optional',
          parameter.default === undefined ? '' : `default ${JSON.stringify(parameter.default)}`,
          parameter.enum === undefined
            ? ''
            : `one of ${parameter.enum.map((value) => JSON.stringify(value)).join('|')}`,
          parameter.sensitive === true ? 'sensitive' : '',
        ].filter((fact) => fact !== '');
        lines.push(
          `    ${name}: ${facts.join(', ')}${parameter.description === undefined ? '' : ` — ${parameter.description}`}`,
        );
      }
    }
    if (info.problem !== null)
      lines.push(`  problem       ${info.problem.code}: ${info.problem.message}`);
    if (shadowed.length > 0) {
      lines.push('  shadowed (not used; lower precedence):');
      for (const candidate of shadowed)
        lines.push(
          `    ${candidate.source} — ${candidate.path} (sha256 ${candidate.sha256.slice(0, 12)}…)`,
        );
    }
    // Manifests and paths come from plugin directories: shown, never obeyed by the terminal.
    io.out(`${lines.map((line) => terminalSafe(line)).join('\n')}\n`);
    return 0;
  });
}
