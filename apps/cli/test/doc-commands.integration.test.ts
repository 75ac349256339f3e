/**
 * Every `rune ...`, `npx rune ...` and `rune-plugin-test ...` command shown in README.md and
 * docs/*.md (fenced ```sh / ```bash / ```console blocks; `$ ` prompts in console blocks) is run
 * here against the built CLI, so examples never rot.
 *
 * How: each document gets its own sandbox (throw-away HOME and XDG dirs) and the documented
 * lines run in document order through `bash -c`, as a reader would type them, with `rune` and
 * `rune-plugin-test` on PATH as small shims around the built bins. A command that can run here
 * (local transport, list-actions, plugin-info, audit, completion, --help, the test kit on repo
 * paths) runs as written. A `run` that needs remote hosts (SSH nodes, SSM instances, inventories)
 * or a dangerous action gets `--dry-run` added by the shim: it is still parsed, its nodes are
 * resolved against the inventory and config the test writes (or the document defines), and its
 * plan is built, so UNKNOWN_NODE, bad flags and bad parameters fail. `--dry-run` does not need
 * `--yes` and does not check SSM instance ids (the transport does, when it runs), so both are
 * checked here on the argv the shell really passed: a dangerous action run without `--dry-run`
 * must say `--yes`, and every instance id must match the SSM pattern.
 *
 * Files the documents define (a fenced block opening with `# ~/path` or `# name.yaml`, a
 * `cat > file <<'EOF'` heredoc) are written where they say when the reader reaches them.
 * Commands that cannot be checked at all are in UNCHECKABLE with the reason; anything else
 * that fails names the file, the line and the command.
 *
 * Inline `rune …` spans of the prose are checked too, though not run (they hold placeholders and
 * fragments such as `rune run --server`): their command words must be a command of the built
 * CLI and every flag they name must be in that command's --help.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { INSTANCE_ID_PATTERN } from '@rune/transport-ssm';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { CLI_BIN, type CliSandbox, createCliSandbox } from './cli-harness.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const TEST_KIT_BIN = join(REPO, 'apps/plugin-test-kit/bin/rune-plugin-test.js');
const DOCUMENTS = [
  'README.md',
  ...readdirSync(join(REPO, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];

/**
 * Documented commands that cannot be checked here, keyed by `file: command` (the command as
 * written, so that editing the document above it does not move the key), with the reason. Keep it small: each entry is a hole in the guarantee.
 */
const UNCHECKABLE: Record<string, string> = {
  'docs/server.md: rune serve':
    '`rune serve` runs until stopped; server-doc.integration.test.ts starts it and runs every shell example of docs/server.md against it',
  'docs/server.md: rune run noop --node localhost -p message=shared --server "$RUNE_URL"':
    'needs the running server of the examples above; server-doc.integration.test.ts runs it against a real rune serve',
  'docs/workflows.md: rune workflow run restart-then-diagnose -i nodes=web01,web02 --server "$RUNE_URL" --dry-run':
    'needs a rune serve with the example workflows; workflows.integration.test.ts runs this line against one',
  'docs/ha.md: rune serve --listen 127.0.0.1:8421':
    '`rune serve` runs until stopped; packages/server/test/ha.integration.test.ts starts three on a real PostgreSQL',
  'docs/ha.md: rune serve --listen 127.0.0.1:8422':
    '`rune serve` runs until stopped; packages/server/test/ha.integration.test.ts starts three on a real PostgreSQL',
  'docs/ha.md: rune audit verify --store "postgres://rune@db.internal:5432/rune?sslmode=verify-full"':
    'needs the example PostgreSQL host; packages/server/test/ha.integration.test.ts runs `rune audit verify --store` against a real PostgreSQL',
  'docs/ha.md: rune audit --store "postgres://rune@db.internal:5432/rune?sslmode=verify-full" --since 1d --node web1':
    'needs the example PostgreSQL host; packages/server/test/ha.integration.test.ts runs `rune audit --store` against a real PostgreSQL',
  'docs/plugin-test-kit.md: npx rune-plugin-test ./restart-nginx.sh':
    '`./restart-nginx.sh` stands for the reader’s own plugin; the repository has no such file',
};

/**
 * Placeholders the documents use for values only a real run produces; replaced before the line
 * runs (a `…` elsewhere, e.g. `-p token=…`, is a literal value).
 */
const PLACEHOLDERS: { text: string; value: (sandbox: DocSandbox) => Promise<string> }[] = [
  { text: '<trace id>', value: async (sandbox) => sandbox.lastTraceId() },
  {
    text: '9f2c…e1',
    value: async (sandbox) => {
      const head = await sandbox.bash('rune audit head -o json');
      return (JSON.parse(head.stdout) as { hash: string }).hash;
    },
  },
];

/** Inventory and files the test provides in every sandbox's working directory. */
const TEST_INVENTORY = `# written by doc-commands.integration.test.ts: the names the docs use
nodes:
  web1: { address: 10.0.0.11, tags: [web, eu] }
  web2: { address: 10.0.0.12, tags: [web, eu] }
  web3: { address: 10.0.0.13, port: 2222, tags: [web, us] }
  db1: { address: 10.0.0.21, tags: [db, eu] }
  old1: { address: 10.0.0.99, tags: [legacy] }
groups:
  web: ["tag:web"]
`;

const ROTATE_TOKEN_MANIFEST = JSON.stringify({
  schema_version: 'mrs_v1',
  name: 'rotate-token',
  version: '1.0.0',
  description: 'docs/ssm.md example: a plugin with a sensitive parameter',
  parameters: {
    type: 'object',
    properties: { token: { type: 'string', sensitive: true } },
    required: ['token'],
  },
  tags: ['test'],
  requirements: { commands: [], privilege: 'user' },
  timeout_ms: 10000,
  idempotent: true,
  supports_dry_run: false,
  dangerous: false,
  accepts: ['rcs_v1'],
});

const DANGEROUS_ACTIONS = readdirSync(join(REPO, 'plugins/builtin'))
  .filter((name) => name.endsWith('.manifest.json'))
  .map(
    (name) =>
      JSON.parse(readFileSync(join(REPO, 'plugins/builtin', name), 'utf8')) as {
        name: string;
        dangerous?: boolean;
      },
  )
  .filter((manifest) => manifest.dangerous === true)
  .map((manifest) => manifest.name);

/** One documented command: a logical line (continuations joined) of a fenced block. */
interface DocCommand {
  file: string;
  line: number;
  text: string;
  /** The EPS code of a console example whose shown output is `error CODE: ...`. */
  expectedError?: string;
}

/** A file the document defines, written into the sandbox when the reader reaches it. */
interface DocFile {
  file: string;
  line: number;
  path: string;
  content: string;
}

type DocStep = { kind: 'command'; command: DocCommand } | { kind: 'file'; docFile: DocFile };

const COMMAND_WORD =
  /(^|[|&;]\s*|^\s*(?:[A-Z_][A-Z0-9_]*=\S*\s+)+)(npx\s+)?(rune|rune-plugin-test)(\s|$)/;

/** Removes a trailing `# comment` outside quotes. */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let index = 0; index < line.length; index += 1) {
    const char = line[index]!;
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
    } else if (char === "'" || char === '"') {
      quote = char;
    } else if (char === '#' && (index === 0 || /\s/.test(line[index - 1]!))) {
      return line.slice(0, index).trimEnd();
    }
  }
  return line.trimEnd();
}

/** The steps of one document, in order: its rune commands and the files it defines. */
function extractDocSteps(file: string, markdown: string): DocStep[] {
  const lines = markdown.split('\n');
  const steps: DocStep[] = [];
  let index = 0;
  while (index < lines.length) {
    const fence = /^\s*```(\S*)/.exec(lines[index]!);
    if (fence === null) {
      index += 1;
      continue;
    }
    const lang = fence[1] ?? '';
    const start = index + 1;
    let end = start;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end]!)) end += 1;
    const body = lines.slice(start, end);
    index = end + 1;

    const pathComment = /^#\s+(~\/\S+|[\w.-]+\.(?:ya?ml|toml|ini|cfg))(\s|$)/.exec(body[0] ?? '');
    if (['yaml', 'yml', 'toml', 'ini'].includes(lang) && pathComment !== null) {
      steps.push({
        kind: 'file',
        docFile: { file, line: start + 1, path: pathComment[1]!, content: `${body.join('\n')}\n` },
      });
      continue;
    }
    if (!['sh', 'bash', 'console', 'shell'].includes(lang)) continue;
    const console = lang === 'console';
    let row = 0;
    while (row < body.length) {
      let text = body[row]!;
      const lineNumber = start + row + 1;
      row += 1;
      if (console) {
        if (!text.startsWith('$ ')) continue;
        text = text.slice(2);
      }
      if (text.startsWith('#!')) break; // a script shown as an example, not commands to type
      while (text.endsWith('\\') && row < body.length) {
        text = `${text.slice(0, -1)} ${body[row]!.trim()}`;
        row += 1;
      }
      const heredoc = /<<-?\s*'?(\w+)'?/.exec(text);
      if (heredoc !== null) {
        const terminator = heredoc[1]!;
        const content: string[] = [];
        while (row < body.length && body[row] !== terminator) content.push(body[row++]!);
        row += 1;
        const target = /^cat\s+>\s*(\S+)/.exec(text);
        if (target !== null) {
          steps.push({
            kind: 'file',
            docFile: {
              file,
              line: lineNumber,
              path: target[1]!,
              content: `${content.join('\n')}\n`,
            },
          });
          continue;
        }
      }
      const command = stripComment(text).trim();
      if (command === '' || !COMMAND_WORD.test(command)) continue;
      const shownError = console ? /^error ([A-Z_]+):/.exec(body[row] ?? '') : null;
      steps.push({
        kind: 'command',
        command: {
          file,
          line: lineNumber,
          text: command,
          ...(shownError === null ? {} : { expectedError: shownError[1]! }),
        },
      });
    }
  }
  return steps;
}

/** The inline code spans of the prose (outside fenced blocks) that are a `rune …` command. */
function inlineCommands(file: string, markdown: string): { where: string; text: string }[] {
  const spans: { where: string; text: string }[] = [];
  let fenced = false;
  markdown.split('\n').forEach((line, index) => {
    if (/^\s*```/.test(line)) fenced = !fenced;
    if (fenced) return;
    for (const match of line.matchAll(/`(?:npx )?(rune [^`]+)`/g)) {
      spans.push({ where: `${file}:${index + 1}`, text: match[1]! });
    }
  });
  return spans;
}

/** `rune` on PATH: records its argv, adds --dry-run where the command needs remote hosts. */
function runeShim(logFile: string): string {
  return `#!/usr/bin/env node
import { spawnSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
const LOCAL = ['localhost', 'local', '127.0.0.1', '::1'];
const DANGEROUS = ${JSON.stringify(DANGEROUS_ACTIONS)};
const argv = process.argv.slice(2);
let args = argv;
let dryRunAdded = false;
if (argv[0] === 'run' && !argv.includes('--dry-run') && !argv.includes('--help')) {
  const nodes = [];
  for (let i = 1; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--node' || arg === '-n') nodes.push(...String(argv[i + 1] ?? '').split(','));
    else if (arg.startsWith('--node=')) nodes.push(...arg.slice(7).split(','));
  }
  const remote =
    DANGEROUS.includes(argv[1]) ||
    nodes.length === 0 ||
    nodes.some((node) => !LOCAL.includes(node)) ||
    argv.some((arg) => /^--(use-ssm|inventory|nodes-file|transport)(=|$)/.test(arg));
  if (remote) {
    args = [...argv, '--dry-run'];
    dryRunAdded = true;
  }
}
appendFileSync(${JSON.stringify(logFile)}, JSON.stringify({ argv, dryRunAdded }) + '\\n');
const result = spawnSync(process.execPath, [${JSON.stringify(CLI_BIN)}, ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);
`;
}

interface BashResult {
  code: number;
  stdout: string;
  stderr: string;
}

interface DocSandbox {
  sandbox: CliSandbox;
  work: string;
  logFile: string;
  bash(command: string): Promise<BashResult>;
  lastTraceId(): Promise<string>;
}

function createDocSandbox(): DocSandbox {
  const sandbox = createCliSandbox();
  const work = join(sandbox.root, 'work');
  const bin = join(sandbox.root, 'bin');
  const logFile = join(sandbox.root, 'argv.jsonl');
  mkdirSync(work, { recursive: true });
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'rune'), runeShim(logFile));
  writeFileSync(
    join(bin, 'rune-plugin-test'),
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(TEST_KIT_BIN)} "$@"\n`,
  );
  chmodSync(join(bin, 'rune'), 0o755);
  chmodSync(join(bin, 'rune-plugin-test'), 0o755);
  // The files the documents refer to without defining them.
  writeFileSync(join(work, 'fleet.yaml'), TEST_INVENTORY);
  writeFileSync(join(work, 'hosts.txt'), 'web1\nweb2\n');
  mkdirSync(join(work, 'alerts'));
  writeFileSync(join(work, 'alerts', 'web1'), 'disk usage above 90% on /\n');
  symlinkSync(join(REPO, 'plugins'), join(work, 'plugins'));
  // docs/workflows.md runs the shipped example workflows by their repository paths.
  symlinkSync(join(REPO, 'examples'), join(work, 'examples'));
  // docs/ssm.md's example of a plugin with a sensitive parameter; refused while planning, so
  // its script never runs.
  writeFileSync(join(sandbox.pluginDir, 'rotate-token.manifest.json'), ROTATE_TOKEN_MANIFEST);
  writeFileSync(join(sandbox.pluginDir, 'rotate-token.sh'), '#!/bin/sh\nexit 70\n');
  chmodSync(join(sandbox.pluginDir, 'rotate-token.sh'), 0o755);

  const bash = (command: string): Promise<BashResult> =>
    new Promise((resolve) => {
      const child = spawn('bash', ['-c', command], {
        cwd: work,
        env: { ...sandbox.env, PATH: `${bin}:${sandbox.env.PATH}` },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
      });
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
      });
      child.stdin.end();
      child.on('close', (code) => resolve({ code: code ?? 999, stdout, stderr }));
    });
  return {
    sandbox,
    work,
    logFile,
    bash,
    async lastTraceId() {
      // A real, audited run whose trace the documents' `<trace id>` stands for.
      const run = await bash('rune run noop --node localhost -o json');
      return (JSON.parse(run.stdout) as { trace_id: string }).trace_id;
    },
  };
}

/** Where a path the document names lives in the sandbox. */
function sandboxPath(docSandbox: DocSandbox, path: string): string {
  return path.startsWith('~/')
    ? join(docSandbox.sandbox.home, path.slice(2))
    : join(docSandbox.work, path);
}

/** Static checks on one rune invocation, on the argv the shell really passed. */
function argvProblems(argv: readonly string[]): string[] {
  const problems: string[] = [];
  if (argv[0] !== 'run') return problems;
  const action = argv[1] ?? '';
  const dryRun = argv.includes('--dry-run');
  if (
    DANGEROUS_ACTIONS.includes(action) &&
    !dryRun &&
    !argv.some((a) => a === '--yes' || a === '-y')
  ) {
    problems.push(
      `${action} is dangerous: without --yes a real run is refused (DANGEROUS_ACTION_REFUSED)`,
    );
  }
  if (argv.includes('--use-ssm')) {
    for (let index = 1; index < argv.length; index += 1) {
      if (argv[index] !== '--node' && argv[index] !== '-n') continue;
      for (const node of String(argv[index + 1] ?? '').split(',')) {
        if (!INSTANCE_ID_PATTERN.test(node)) {
          problems.push(
            `--use-ssm node ${node} is not an SSM instance id (i- + 8 or 17 hex digits, mi- + 17): INVALID_TARGET`,
          );
        }
      }
    }
  }
  return problems;
}

const sandboxes: DocSandbox[] = [];
afterAll(() => {
  for (const docSandbox of sandboxes) docSandbox.sandbox.cleanup();
});

describe('documented commands', () => {
  const all = DOCUMENTS.map((file) => ({
    file,
    steps: extractDocSteps(file, readFileSync(join(REPO, file), 'utf8')),
  }));

  it('finds the commands of the README and the docs (the extractor itself works)', () => {
    const commands = all.flatMap((doc) =>
      doc.steps.flatMap((step) => (step.kind === 'command' ? [step.command] : [])),
    );
    expect(commands.length).toBeGreaterThan(40);
    const readme = commands.filter((command) => command.file === 'README.md');
    expect(readme.map((command) => command.text)).toContain(
      'npx rune run check-disk --node localhost -p warning_percent=70 --dry-run',
    );
    // console prompts, comments and other tools
    expect(readme.some((command) => command.text.startsWith('npx -y pnpm'))).toBe(false);
    expect(readme.map((command) => command.text)).toContain(
      'rune run restart-docker --node web02 --yes',
    );
    // every allow-listed command still exists (a stale entry would hide nothing, but mislead)
    for (const key of Object.keys(UNCHECKABLE)) {
      expect(commands.map((command) => `${command.file}: ${command.text}`)).toContain(key);
    }
  });

  for (const doc of all) {
    const commandCount = doc.steps.filter((step) => step.kind === 'command').length;
    if (commandCount === 0) continue;
    // rune-plugin-test on plugins/builtin runs shellcheck and every case: the slowest document.
    it(`${doc.file}: every command works as written`, { timeout: 600_000 }, async () => {
      const docSandbox = createDocSandbox();
      sandboxes.push(docSandbox);
      const failures: string[] = [];
      for (const step of doc.steps) {
        if (step.kind === 'file') {
          const target = sandboxPath(docSandbox, step.docFile.path);
          mkdirSync(dirname(target), { recursive: true });
          writeFileSync(target, step.docFile.content);
          continue;
        }
        const { command } = step;
        if (UNCHECKABLE[`${command.file}: ${command.text}`] !== undefined) continue;
        const where = `${command.file}:${command.line}`;
        let text = command.text
          .replace(/(^|[|&;]\s*|\s)npx\s+(rune-plugin-test|rune)(?=\s|$)/g, '$1$2')
          .replace(/^npx\s+(rune-plugin-test|rune)(?=\s|$)/, '$1');
        for (const placeholder of PLACEHOLDERS) {
          if (text.includes(placeholder.text))
            text = text.replaceAll(placeholder.text, await placeholder.value(docSandbox));
        }
        writeFileSync(docSandbox.logFile, '');
        const result = await docSandbox.bash(text);
        const invocations = readFileSync(docSandbox.logFile, 'utf8')
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line) as { argv: string[]; dryRunAdded: boolean });
        const problems = invocations.flatMap((invocation) => argvProblems(invocation.argv));
        const shown = command.expectedError;
        if (shown !== undefined) {
          if (result.code === 0 || !`${result.stderr}${result.stdout}`.includes(`error ${shown}:`))
            problems.push(
              `the document shows error ${shown}; got exit ${result.code}:\n    ${result.stderr.trim()}`,
            );
        } else if (result.code !== 0) {
          const output = `${result.stderr}${result.stdout}`
            .trim()
            .split('\n')
            .slice(-6)
            .join('\n    ');
          problems.push(`exit ${result.code}:\n    ${output}`);
        }
        if (problems.length > 0) {
          const added = invocations.some((invocation) => invocation.dryRunAdded)
            ? ' (run with --dry-run added)'
            : '';
          failures.push(`${where}: \`${command.text}\`${added}\n  ${problems.join('\n  ')}`);
        }
      }
      expect(failures, failures.join('\n\n')).toEqual([]);
    });
  }

  it('every SSM instance id in the docs matches the SSM pattern', () => {
    const failures: string[] = [];
    for (const file of DOCUMENTS) {
      const lines = readFileSync(join(REPO, file), 'utf8').split('\n');
      let inBlock = false;
      lines.forEach((line, index) => {
        if (/^\s*```/.test(line)) inBlock = !inBlock;
        if (!inBlock) return;
        for (const match of line.matchAll(/(?<![\w-])(m?i-[0-9a-f]{4,})(?![\w-])/g)) {
          if (!INSTANCE_ID_PATTERN.test(match[1]!))
            failures.push(`${file}:${index + 1}: ${match[1]} in \`${line.trim()}\``);
        }
      });
    }
    expect(failures, failures.join('\n')).toEqual([]);
  });

  it('the docs/fleet.md inventory reference loads, and its `local` node uses the local transport as its comment says', async () => {
    const markdown = readFileSync(join(REPO, 'docs/fleet.md'), 'utf8');
    const block = /```yaml\n(version: 1[\s\S]*?)```/.exec(markdown);
    expect(block, 'the inventory reference block of docs/fleet.md').not.toBeNull();
    const docSandbox = createDocSandbox();
    sandboxes.push(docSandbox);
    writeFileSync(join(docSandbox.work, 'reference.yaml'), block![1]!);
    const result = await docSandbox.bash(
      'rune run noop --inventory reference.yaml --node @all --dry-run -o json',
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const plan = JSON.parse(result.stdout) as {
      plan: { nodes: { target: { name: string }; transport: string }[] };
    };
    const local = plan.plan.nodes.find((node) => node.target.name === 'local');
    expect(local?.transport).toBe('local');
  });

  it('every inline `rune …` of the prose names a real command, and flags that command has', async () => {
    // Inline spans are not typed as they stand (`rune token revoke NAME`, `rune run --server`):
    // their words and flags are checked against the command's own --help instead.
    const sandbox = createCliSandbox();
    onTestFinished(() => sandbox.cleanup());
    const helps = new Map<string, Promise<string>>();
    const help = (words: readonly string[]): Promise<string> => {
      const key = words.join(' ');
      if (!helps.has(key)) {
        helps.set(
          key,
          sandbox.run([...words, '--help']).then((result) => `${result.stdout}${result.stderr}`),
        );
      }
      return helps.get(key) as Promise<string>;
    };
    const failures: string[] = [];
    const spans = DOCUMENTS.flatMap((file) =>
      inlineCommands(file, readFileSync(join(REPO, file), 'utf8')),
    );
    expect(spans.length).toBeGreaterThan(100);
    for (const span of spans) {
      const words: string[] = [];
      for (const token of span.text.split(/\s+/).slice(1)) {
        if (words.length === 2 || !/^[a-z][a-z-]*$/.test(token)) break;
        words.push(token);
      }
      const text = await help(words);
      // The usage line: `rune audit`, `rune run [action]`, `rune token revoke <name>`.
      const usage = (text.split('\n')[0] ?? '').split(/\s+/).slice(1);
      const extra = words.filter((word, index) => {
        const shown = usage[index];
        return shown === undefined || (shown !== word && !/^[<[]/.test(shown));
      });
      if (extra.length > 0)
        failures.push(
          `${span.where}: \`${span.text}\`: no command \`rune ${words.join(' ')}\` (its help reads \`rune ${usage.join(' ')}\`)`,
        );
      for (const flag of span.text.match(/(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])(?![\w-])/g) ?? []) {
        if (flag !== '--help' && !new RegExp(`(^|\\s)${flag}(?![\\w-])`, 'm').test(text))
          failures.push(
            `${span.where}: \`${span.text}\`: \`rune ${words.join(' ')}\` has no ${flag}`,
          );
      }
    }
    expect(failures, failures.join('\n')).toEqual([]);
  });

  it('the SSM region error names the config file, the [ssm] region key and AWS_REGION', async () => {
    const docSandbox = createDocSandbox();
    sandboxes.push(docSandbox);
    // The plain docs/ssm.md command, really run (not dry-run) with no region anywhere.
    const result = await docSandbox.sandbox.run([
      'run',
      'gather-logs',
      '--node',
      'i-0abc123456789def0',
      '--use-ssm',
    ]);
    expect(result.code).toBe(2);
    const configFile = join(docSandbox.sandbox.home, '.config/rune/config.toml');
    expect(result.stdout).toContain(
      `INVALID_CONFIG: No AWS region for SSM: set region = "<aws-region>" in the [ssm] section of ${configFile}, or export AWS_REGION`,
    );
    expect(result.stdout).toContain('hint: fix the file and key named above');
    expect(existsSync(configFile)).toBe(false);
  });
});
