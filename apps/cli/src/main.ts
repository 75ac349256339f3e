/**
 * The `rune` command line. This module only declares commands and flags (yargs); each command's
 * implementation is imported when it runs, so `rune --help` loads neither @rune/core nor any
 * transport. Every failure ends as an EPS error and the catalog's exit code — a stack trace
 * never reaches the operator (the last-resort handler reports INTERNAL_ERROR, exit 70).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { EpsError } from '@rune/protocol';
// The run-document builder alone: it loads nothing (no TypeBox), so an early error stays cheap.
import { runResultDocument, runSummaryLine } from '@rune/protocol/run-documents';
import type { Argv } from 'yargs';
import { type CliIo, colorChoiceOf, processIo, withColorChoice } from './cli-io.js';
import { workflowCommandModule } from './commands/workflow-flags.js';
import { terminalSafe } from './render/terminal-text.js';

const OUTPUTS = ['pretty', 'json', 'jsonl'] as const;

/** Exit code of usage errors (EPS INVALID_ARGUMENT). */
const USAGE_EXIT = 2;
/** Exit code of internal errors (EPS INTERNAL_ERROR). */
const INTERNAL_EXIT = 70;

function epsError(code: string, category: 'validation' | 'internal', message: string): EpsError {
  return {
    code,
    category,
    message,
    retryable: false,
    source: { component: 'rune-cli' },
    trace_id: randomBytes(16).toString('hex'),
    timestamp: new Date().toISOString(),
  };
}

/** Reports an error that happened outside any command (parsing, a crash) in the right format. */
function reportEarlyError(
  io: CliIo,
  argv: readonly string[],
  code: string,
  message: string,
  exit: number,
): void {
  const eps = epsError(code, code === 'INTERNAL_ERROR' ? 'internal' : 'validation', message);
  let output: string | undefined;
  argv.forEach((arg, index) => {
    if (arg === '--output' || arg === '-o') output = argv[index + 1];
    else if (arg.startsWith('--output=')) output = arg.slice('--output='.length);
    else if (arg.startsWith('-o=')) output = arg.slice(3);
  });
  if (output === 'json' || output === 'jsonl') {
    const isRun = argv[0] === 'run';
    const run = runResultDocument({ trace_id: eps.trace_id, exit_code: exit, error: eps });
    const document = isRun ? (output === 'jsonl' ? runSummaryLine(run) : run) : { error: eps };
    io.out(
      output === 'json'
        ? `${JSON.stringify(document, null, 2)}\n`
        : `${JSON.stringify(document)}\n`,
    );
  } else {
    io.err(`error ${code}: ${terminalSafe(message)}\nhint: see \`rune --help\`\n`);
  }
}

/**
 * Reports what escaped every command handler as INTERNAL_ERROR (exit 70) and returns that code.
 * Not `RuneError.from` on purpose: anything that gets this far, a RuneError included, is a bug in
 * RUNE, and this module must work without loading @rune/protocol (see the module comment).
 */
function reportCrash(io: CliIo, argv: readonly string[], error: unknown): number {
  const message = error instanceof Error ? error.message : String(error);
  reportEarlyError(io, argv, 'INTERNAL_ERROR', `unexpected error: ${message}`, INTERNAL_EXIT);
  return INTERNAL_EXIT;
}

const commonOptions = (y: Argv) =>
  y
    .option('config', {
      type: 'string',
      describe: 'Extra config file (TOML), merged after the standard ones (also RUNE_CONFIG)',
      global: true,
    })
    .option('output', {
      alias: 'o',
      choices: OUTPUTS,
      describe: 'Output format (default: [core] output, else pretty)',
      global: true,
    })
    .option('verbose', {
      alias: 'v',
      type: 'boolean',
      describe: "More detail: warnings, each node's output_data, stderr tail, artifacts",
      global: true,
    })
    .option('color', {
      choices: ['auto', 'always', 'never'] as const,
      describe: 'Colour: auto (a terminal, FORCE_COLOR / NO_COLOR decide; default), always, never',
      global: true,
    });

/**
 * The tracing paragraph of `rune run --help` and `rune serve --help`: tracing is configured only
 * by the standard OTEL_* variables, so the help names them and the page that documents them.
 */
const TRACING_HELP =
  'Tracing (OpenTelemetry, off by default): set OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_TRACES_EXPORTER=otlp|console) to export a trace per run over OTLP/HTTP; OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turns it off. OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and OTEL_EXPORTER_OTLP_HEADERS apply as in any OpenTelemetry SDK. Spans, attributes and metrics: docs/observability.md.';

/** A usage error found by the argument parser (unknown flag, missing argument, bad choice). */
class CliUsageError extends Error {}

/** Flags that may be given several times (each value is one more item). */
const REPEATABLE_FLAGS = new Set(['node', 'n', 'param', 'p', 'input', 'i']);

/**
 * The flag given more than once among those that take one value (yargs turns a repeated flag
 * into an array, which no command expects), named as the operator would type it.
 */
export function repeatedFlag(args: Readonly<Record<string, unknown>>): string | undefined {
  const repeated = Object.entries(args)
    .filter(([key, value]) => key !== '_' && !REPEATABLE_FLAGS.has(key) && Array.isArray(value))
    .map(([key]) => key)
    // Prefer the long, dashed spelling yargs also records (nodes-file over nodesFile and -o).
    .sort((a, b) => Number(/[A-Z]/.test(a)) - Number(/[A-Z]/.test(b)) || b.length - a.length);
  const key = repeated[0];
  return key === undefined ? undefined : key.length === 1 ? `-${key}` : `--${key}`;
}

/**
 * Before running any command, yargs renders the whole help text and caches it in case the
 * handler asks for it — 60 to 100 ms of text measuring on every `rune run`. No RUNE handler does:
 * `--help` and usage errors render their own text, so the cache is switched off (when this yargs
 * version has it; otherwise nothing changes).
 */
function withoutHelpCache<T>(cli: Argv<T>): Argv<T> {
  const internals = cli as unknown as {
    getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: unknown } };
  };
  const usage = internals.getInternalMethods?.().getUsageInstance?.();
  if (usage !== undefined && typeof usage.cacheHelpMessage === 'function') {
    usage.cacheHelpMessage = () => {};
  }
  return cli;
}

/** Builds the yargs program; `exit` receives the exit code of the command that ran. */
export async function buildCli(
  argv: readonly string[],
  io: CliIo,
  exit: (code: number) => void,
): Promise<Argv> {
  // Loaded here, not at the top: a bare `rune --help` is served from dist/help.txt without it.
  const { default: yargs } = await import('yargs');
  const run =
    <A>(load: () => Promise<(args: A, io: CliIo) => Promise<number>>) =>
    async (args: A): Promise<void> => {
      const command = await load();
      exit(await command(args, io));
    };

  return (
    withoutHelpCache(commonOptions(yargs([...argv])))
      .scriptName('rune')
      .usage(
        '$0 <command> [options]\n\nRun curated remediation and diagnostic actions on Linux nodes.',
      )
      .command(
        'run [action]',
        'Run an action (plugin) on one or more nodes',
        (y) =>
          y
            .positional('action', {
              type: 'string',
              describe: 'Action name (see `rune list-actions`); taken from the audit with --rerun',
            })
            .option('node', {
              alias: 'n',
              type: 'string',
              array: true,
              describe:
                'Target selection (repeatable, comma list): name, user@host:port, @group, tag:x, glob, !exclude; localhost runs here',
            })
            .option('nodes-file', {
              type: 'string',
              describe: 'Read selections from FILE, one per line (# comments); - reads stdin',
            })
            .option('inventory', {
              type: 'string',
              describe:
                'Inventory file: RUNE YAML, or an Ansible INI/YAML inventory (default [core] inventory)',
            })
            .option('param', {
              alias: 'p',
              type: 'string',
              array: true,
              describe: 'Parameter key=value (repeatable); typed by the plugin manifest',
            })
            .option('params', {
              type: 'string',
              describe: 'Parameters as JSON: @file.json, - (stdin) or inline',
            })
            .option('dry-run', {
              type: 'boolean',
              describe: 'Print the plan (plugin, sha256, RCS request); contact nothing',
            })
            .option('transport', {
              alias: 't',
              type: 'string',
              describe: 'Transport for every node (local, ssh, ssm)',
            })
            .option('use-ssm', { type: 'boolean', describe: 'Shorthand for --transport ssm' })
            .option('timeout', { type: 'string', describe: 'Per-node timeout: ms or 30s, 5m, 1h' })
            .option('concurrency', {
              // A string: yargs' number parsing would accept 0x10, 1e21 and 1.5.
              type: 'string',
              describe: 'Nodes run at once (default [execution] concurrency, 50)',
            })
            .option('canary', {
              type: 'string',
              describe: 'Run the first N nodes first; start the rest only if all of them succeed',
            })
            .option('max-failures', {
              type: 'string',
              describe: 'Stop starting nodes once more than N (or P%) failed; running ones finish',
            })
            .option('deadline', {
              type: 'string',
              describe: 'Overall deadline (30s, 5m, 1h): skip unstarted nodes, cancel running ones',
            })
            .option('fetch-artifacts', {
              type: 'boolean',
              describe: 'Download artifacts the plugin declares',
            })
            .option('yes', {
              alias: 'y',
              type: 'boolean',
              describe: 'Confirm an action marked dangerous',
            })
            .option('server', {
              type: 'string',
              describe:
                'Submit to this rune serve (URL) and follow it there; the token comes from RUNE_TOKEN',
            })
            .option('output-dir', {
              type: 'string',
              describe:
                'Also write one file per node into DIR (created 0700): NODE.json (its result), NODE.stderr.txt',
            })
            .option('rerun', {
              choices: ['all', 'failed'] as const,
              describe:
                'Run the action of --trace again with its recorded parameters, on all its nodes or on those that failed (or recorded no outcome)',
            })
            .option('trace', {
              type: 'string',
              describe: 'Trace id of the run --rerun repeats (see `rune audit`)',
            })
            .check((args) => {
              if (args.action === undefined && args.rerun === undefined)
                throw new CliUsageError(
                  'name an action: rune run <action> (or --rerun with --trace)',
                );
              if (args.trace !== undefined && args.rerun === undefined)
                throw new CliUsageError('--trace needs --rerun all|failed');
              return true;
            })
            .example('$0 run check-disk --node localhost', 'Check disk usage on this machine')
            .example(
              '$0 run restart-docker -n web1,web2 --yes',
              'Restart Docker on two nodes over SSH',
            )
            .example(
              '$0 run gather-logs -n db1 -p since=-1h -p lines=500 --output json',
              'Machine-readable result',
            )
            .example(
              '$0 run noop -n localhost --dry-run',
              'Show what would run, without running it',
            )
            .example(
              '$0 run check-disk --node @all --inventory fleet.yaml',
              'Every node of an inventory, with a progress bar and a summary table',
            )
            .example(
              "$0 run restart-docker -n 'tag:web,!web03' --canary 2 --max-failures 10% --yes",
              'Two canaries first; stop starting nodes once more than 10% failed',
            )
            .example(
              'cat hosts.txt | $0 run check-disk --nodes-file - --concurrency 20 --deadline 5m -o jsonl',
              'Nodes from stdin; one JSON line per node as it finishes',
            )
            .example(
              '$0 run restart-nomad -n i-0abc1234def567890 --use-ssm --timeout 5m --yes',
              'Through AWS SSM',
            )
            .example(
              '$0 run --rerun failed --trace 4bf92f3577b34da6a3ce929d0e0e4736',
              'Run that trace again on the nodes where it failed',
            )
            .epilog(TRACING_HELP),
        run(async () => (await import('./commands/run.js')).runCommand),
      )
      .command(workflowCommandModule(run))
      .command(
        ['list-actions', 'show-available-actions'],
        'List the actions RUNE can run',
        (y) =>
          y
            .example('$0 list-actions', 'Table of actions')
            .example('$0 list-actions -o json', 'As JSON'),
        run(async () => (await import('./commands/list-actions.js')).listActionsCommand),
      )
      .command(
        'plugin-info <action>',
        'Show a plugin: version, source, sha256, parameters, requirements, shadowed copies',
        (y) =>
          y
            .positional('action', { type: 'string', demandOption: true })
            .example('$0 plugin-info check-disk', 'Parameters and where the plugin comes from')
            .example('$0 plugin-info noop -o json', 'As JSON'),
        run(async () => (await import('./commands/plugin-info.js')).pluginInfoCommand),
      )
      .command('plugin', 'Write plugins', (y) =>
        y
          .command(
            'new <name>',
            'Scaffold a plugin (NAME.sh, manifest, cases file) that passes rune-plugin-test as generated',
            (c) =>
              c
                .positional('name', {
                  type: 'string',
                  describe: 'Action name of the new plugin',
                  demandOption: true,
                })
                .option('dir', {
                  type: 'string',
                  describe: 'Write into this directory (default: the user plugin directory)',
                })
                .example('$0 plugin new check-ntp', 'Into ~/.local/share/rune/plugins')
                .example('$0 plugin new check-ntp --dir ./plugins', 'Into ./plugins'),
            run(async () => (await import('./commands/plugin-new.js')).pluginNewCommand),
          )
          .demandCommand(1, 'name a subcommand: new'),
      )
      .command('config', 'Inspect or create the configuration', (y) =>
        y
          .command(
            'init',
            'Write a commented starter config (~/.config/rune/config.toml or --path)',
            (c) =>
              c
                .option('path', { type: 'string', describe: 'Write this file instead' })
                .option('force', { type: 'boolean', describe: 'Replace an existing file' })
                .example('$0 config init', 'Every key, commented out with its default')
                .example('$0 config init --path ./rune.toml', 'A per-directory config'),
            run(async () => (await import('./commands/config-init.js')).configInitCommand),
          )
          .command(
            'show',
            'Print the effective configuration and the source of every value',
            (c) =>
              c
                .example('$0 config show', 'TOML-like listing')
                .example('$0 config show -o json', 'As JSON'),
            run(async () => (await import('./commands/config-show.js')).configShowCommand),
          )
          .demandCommand(1, 'name a subcommand: init or show'),
      )
      .command(
        'audit',
        'List audit records (filters: --action, --node, --trace, --since); attempts without an outcome show as no-outcome',
        (y) =>
          y
            .command(
              'verify',
              'Verify the audit log: hash chain, signatures, sequence, anchored head (exit 70 with AUDIT_CHAIN_BROKEN if tampered)',
              (c) =>
                c
                  .option('public-key', {
                    type: 'string',
                    describe:
                      'Verify signatures with this public key (default: the [audit] key_file)',
                  })
                  .option('expect-head', {
                    type: 'string',
                    describe: 'Fail unless the log still holds the record with this hash',
                  })
                  .option('anchor', {
                    type: 'string',
                    describe:
                      'Fail unless the log still holds the head saved by `rune audit head -o json`',
                  })
                  .option('allow-unsigned', {
                    type: 'boolean',
                    describe:
                      'Accept a log with no signed record (written before RUNE signed records)',
                  })
                  .option('store', {
                    type: 'string',
                    describe:
                      'Verify the audit chain of a shared rune serve store (postgres://...) instead of the file',
                  })
                  .example('$0 audit verify', 'Check the audit log with the local key')
                  .example(
                    '$0 audit verify --public-key audit.pub --anchor head.json',
                    'Check a copy without the private key, and that nothing was cut from its end',
                  ),
              run(async () => (await import('./commands/audit.js')).auditVerifyCommand),
            )
            .command(
              'key',
              'Print the public key that verifies the audit signatures (creates the key pair on first use)',
              (c) => c.example('$0 audit key > audit.pub', 'Export it for an auditor'),
              run(async () => (await import('./commands/audit.js')).auditKeyCommand),
            )
            .command(
              'head',
              'Print seq, hash and signature of the last audit record (anchor it elsewhere)',
              (c) => c.example('$0 audit head -o json > head.json', 'Save the head to check later'),
              run(async () => (await import('./commands/audit.js')).auditHeadCommand),
            )
            .option('action', { type: 'string', describe: 'Only this action' })
            .option('node', { type: 'string', describe: 'Only this node' })
            .option('trace', { type: 'string', describe: 'Only this trace id' })
            .option('since', {
              type: 'string',
              describe: 'Only records since 30m, 2h, 7d or an ISO time',
            })
            .option('limit', { type: 'number', describe: 'At most this many (most recent)' })
            .option('store', {
              type: 'string',
              describe:
                'List the audit chain of a shared rune serve store (postgres://...) instead of the file',
            })
            .example('$0 audit --action restart-docker --since 1d', 'Yesterday’s Docker restarts')
            .example(
              '$0 audit --trace 4bf92f3577b34da6a3ce929d0e0e4736 -o json',
              'One run as JSON',
            ),
        run(async () => (await import('./commands/audit.js')).auditListCommand),
      )
      .command(
        'serve',
        'Run the RUNE service: REST API, run store, live events, API tokens (docs/server.md)',
        (y) =>
          y
            .option('listen', {
              type: 'string',
              describe: 'host:port to listen on (default [server] listen, 127.0.0.1:8421)',
            })
            .option('log-format', {
              choices: ['human', 'json'] as const,
              describe:
                'Log lines for people, or JSON lines with trace ids (default [server] log_format)',
            })
            .example('$0 serve', 'Serve on 127.0.0.1:8421 with the [server] settings')
            .example('$0 serve --listen 127.0.0.1:9000', 'Another port')
            .epilog(TRACING_HELP),
        run(async () => (await import('./commands/serve.js')).serveCommand),
      )
      .command('token', 'Manage the API tokens of `rune serve`', (y) =>
        y
          .command(
            'create',
            'Create a token and print it once (only its hash is stored)',
            (c) =>
              c
                .option('name', {
                  type: 'string',
                  demandOption: true,
                  describe: 'Who uses it: the principal token:<name> in runs and audit records',
                })
                .option('role', {
                  type: 'string',
                  demandOption: true,
                  describe:
                    "Built-in: viewer reads; operator also runs and cancels; admin everything. With [server] policy: that policy's roles, comma-separated",
                })
                .option('expires', {
                  type: 'string',
                  describe: 'Lifetime: 12h, 30d, 90d (default) or never',
                })
                .example(
                  '$0 token create --name grafana --role operator --expires 90d',
                  'A token for a dashboard',
                ),
            run(async () => (await import('./commands/token.js')).tokenCreateCommand),
          )
          .command(
            'list',
            'List tokens (never their secrets): name, role, state, expiry, last use',
            (c) => c.example('$0 token list -o json', 'As JSON'),
            run(async () => (await import('./commands/token.js')).tokenListCommand),
          )
          .command(
            'revoke <name>',
            'Revoke a token: refused from the next request on',
            (c) =>
              c
                .positional('name', { type: 'string', demandOption: true })
                .example('$0 token revoke grafana', 'Revoke the token named grafana'),
            run(async () => (await import('./commands/token.js')).tokenRevokeCommand),
          )
          .demandCommand(1, 'name a subcommand: create, list or revoke'),
      )
      .command('db', 'The run store of `rune serve` (docs/ha.md)', (y) =>
        y
          .command(
            'migrate',
            'Migrate the run store ([server] store or --store: SQLite file or postgres:// URL) to this schema',
            (c) =>
              c
                .option('store', {
                  type: 'string',
                  describe: 'The store instead of [server] store',
                })
                .example('$0 db migrate', 'Migrate the configured store'),
            run(async () => (await import('./commands/db.js')).dbMigrateCommand),
          )
          .demandCommand(1, 'name a subcommand: migrate'),
      )
      .command('policy', 'Check the RBAC policy of `rune serve` offline (docs/rbac.md)', (y) =>
        y
          .command(
            'check',
            'Print allow or deny and the rule that decides, for a subject, action and nodes',
            (c) =>
              c
                .option('as', {
                  type: 'string',
                  demandOption: true,
                  describe: 'Subject: alice (= user:alice), token:ci, service:alerts',
                })
                .option('group', {
                  type: 'string',
                  describe: 'OIDC groups of the subject, comma-separated',
                })
                .option('role', {
                  type: 'string',
                  describe: "Roles the subject carries itself (a token's roles), comma-separated",
                })
                .option('verb', {
                  type: 'string',
                  describe: 'view, dry-run, run (default), cancel, approve or admin',
                })
                .option('action', { type: 'string', describe: 'The action' })
                .option('node', {
                  type: 'string',
                  array: true,
                  describe: 'Node selection (repeatable), as for rune run',
                })
                .option('param', {
                  type: 'string',
                  array: true,
                  describe: 'Parameter key=value (repeatable)',
                })
                .option('policy', {
                  type: 'string',
                  describe: 'Policy file (default [server] policy)',
                })
                .example(
                  '$0 policy check --as alice --action restart-docker --node @web',
                  'May alice restart Docker on @web?',
                ),
            run(async () => (await import('./commands/policy.js')).policyCheckCommand),
          )
          .command(
            'test <cases>',
            'Run a table of expected decisions (cases YAML); exit 1 when one fails (CI of a policy repository)',
            (c) =>
              c
                .positional('cases', { type: 'string', demandOption: true })
                .option('policy', {
                  type: 'string',
                  describe: "Policy file (default: the cases file's policy:, then [server] policy)",
                })
                .example('$0 policy test cases.yaml', 'Check every expectation'),
            run(async () => (await import('./commands/policy.js')).policyTestCommand),
          )
          .demandCommand(1, 'name a subcommand: check or test'),
      )
      .command(
        'approve <run>',
        'Approve (or --reject) a run that waits for four-eyes approval on a `rune serve`; token in RUNE_TOKEN',
        (c) =>
          c
            .positional('run', { type: 'string', demandOption: true, describe: 'The run id' })
            .option('server', {
              type: 'string',
              demandOption: true,
              describe: 'The rune serve URL',
            })
            .option('reject', { type: 'boolean', describe: 'Reject instead of approve' })
            .option('comment', { type: 'string', describe: 'Why (kept with the vote)' })
            .option('binding', {
              type: 'string',
              describe: 'The binding sha256 you reviewed (refused if the request is another)',
            })
            .example(
              '$0 approve 0b6e… --server https://rune.example:8421 --comment "checked"',
              'Approve a held run',
            ),
        run(async () => (await import('./commands/approve.js')).approveCommand),
      )
      .command('rules', 'The alert rules of `rune serve`, offline (docs/alerts.md)', (y) =>
        y
          .option('rules', {
            type: 'string',
            describe: 'The rules file (default: [server] alert_rules)',
          })
          .command(
            'test <file>',
            'Which rule matches each alert of a payload, and what would run (runs nothing)',
            (c) =>
              c
                .positional('file', {
                  type: 'string',
                  demandOption: true,
                  describe: 'Alertmanager, PagerDuty or generic JSON; - for stdin',
                })
                .option('receiver', { type: 'string', describe: 'As if posted to this receiver' })
                .example(
                  '$0 rules test alert.json --rules alert-rules.yaml',
                  'Dry-test one payload',
                ),
            run(async () => (await import('./commands/rules.js')).rulesTestCommand),
          )
          .command(
            'list',
            'List receivers and rules',
            (c) => c,
            run(async () => (await import('./commands/rules.js')).rulesListCommand),
          )
          .demandCommand(1, 'name a subcommand: test or list'),
      )
      .command(
        'completion [shell]',
        'Print a shell completion script (bash, zsh): actions, --param names, inventory nodes and groups',
        (y) =>
          y
            .positional('shell', {
              type: 'string',
              describe: 'bash or zsh (default: zsh when $SHELL is zsh, else bash)',
            })
            .example('$0 completion bash >> ~/.bashrc', 'Tab completion in bash')
            .example('$0 completion zsh >> ~/.zshrc', 'Tab completion in zsh (after compinit)'),
        run(async () => (await import('./commands/completion.js')).completionCommand),
      )
      .demandCommand(1, 'name a command')
      .check((args) => {
        // A repeated single-value flag (two --config, two --params) is ambiguous: refuse it
        // rather than guess which one wins.
        const flag = repeatedFlag(args);
        if (flag !== undefined)
          throw new CliUsageError(`${flag} may be given only once (it was given several times)`);
        return true;
      }, true)
      .strict()
      .recommendCommands()
      .help()
      .alias('help', 'h')
      .version(false)
      .option('version', { type: 'boolean', describe: 'Show the version' })
      .parserConfiguration({
        'camel-case-expansion': true,
        'dot-notation': false,
        'parse-numbers': false,
        'parse-positional-numbers': false,
      })
      // RUNE_HELP_NO_WRAP: one line per entry, for the man page generator (scripts/render-man.mjs).
      .wrap(
        io.env.RUNE_HELP_NO_WRAP === undefined
          ? Math.min(110, process.stdout.columns ?? 100)
          : null,
      )
      .fail((message, error) => {
        // Stop parsing here: with exitProcess(false) yargs would otherwise go on to run the command.
        if (error !== undefined && error !== null) throw error;
        throw new CliUsageError(message ?? 'invalid arguments');
      })
      .exitProcess(false)
  );
}

/** The pre-rendered top-level help (dist/help.txt, written at build time), if present. */
function staticHelp(env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (env.RUNE_NO_STATIC_HELP !== undefined) return undefined;
  try {
    return readFileSync(new URL('./help.txt', import.meta.url), 'utf8');
  } catch {
    return undefined;
  }
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: readonly string[], given: CliIo = processIo()): Promise<number> {
  let exitCode = 0;
  const choice = colorChoiceOf(argv);
  const io = choice === undefined ? given : withColorChoice(given, choice);
  try {
    if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) {
      const help = staticHelp(io.env);
      if (help !== undefined) {
        io.out(help);
        return 0;
      }
    }
    if (argv[0] === '__complete') {
      // Called by the completion scripts on every Tab: no yargs parsing of the line itself.
      const { completeCommand } = await import('./commands/completion.js');
      return await completeCommand(argv[1] ?? '', io);
    }
    if (argv[0] === '--version') {
      const { versionCommand } = await import('./commands/version.js');
      const code = versionCommand(argv.slice(1), io);
      if (code !== null) return code;
    }
    // yargs reads a lone "-" as an unknown positional, not as the value of --params/--nodes-file.
    const stdinFlags = ['--params', '--nodes-file'];
    const normalized = argv.flatMap((arg, index) =>
      arg === '-' && stdinFlags.includes(argv[index - 1] ?? '')
        ? []
        : stdinFlags.includes(arg) && argv[index + 1] === '-'
          ? [`${arg}=-`]
          : [arg],
    );
    const cli = await buildCli(normalized, io, (code) => {
      exitCode = code;
    });
    await cli.parseAsync();
    return exitCode;
  } catch (error) {
    if (error instanceof CliUsageError) {
      reportEarlyError(io, argv, 'INVALID_ARGUMENT', error.message, USAGE_EXIT);
      return USAGE_EXIT;
    }
    return reportCrash(io, argv, error);
  }
}

const isEntryPoint =
  process.argv[1] !== undefined && /(?:^|[\\/])(?:rune(?:\.js)?|main\.js)$/.test(process.argv[1]);
if (isEntryPoint) {
  // Last resort: an error escaping every handler (a bug) is still an EPS error, never a trace.
  const crash = (error: unknown): void => {
    process.exit(reportCrash(processIo(), process.argv.slice(2), error));
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    () => {
      process.exitCode = INTERNAL_EXIT;
    },
  );
}
