/**
 * The flags of `rune workflow run|validate` (yargs declarations only: the implementation in
 * workflow.ts, and @rune/core with it, is imported when a subcommand runs, as for every command).
 */
import type { Argv, CommandModule } from 'yargs';
import type { CliIo } from '../cli-io.js';
import type { WorkflowRunArgs, WorkflowValidateArgs } from './workflow.js';

/** How main.ts wraps a lazily loaded command implementation into a yargs handler. */
export type CommandRunner = <A>(
  load: () => Promise<(args: A, io: CliIo) => Promise<number>>,
) => (args: A) => Promise<void>;

/** The `rune workflow` command with its `run` and `validate` subcommands. */
export function workflowCommandModule(run: CommandRunner): CommandModule {
  return {
    command: 'workflow',
    describe: 'Run and check workflows: runbooks of several actions (docs/workflows.md)',
    builder: (y: Argv) =>
      y
        .command(
          'run <file>',
          'Run a workflow (YAML or JSON); every step is a normal, audited run',
          (sub) =>
            sub
              .positional('file', { type: 'string', demandOption: true, describe: 'Workflow file' })
              .option('input', {
                alias: 'i',
                type: 'string',
                array: true,
                describe: 'Input key=value (repeatable); typed by the workflow (arrays: a,b,c)',
              })
              .option('dry-run', {
                type: 'boolean',
                describe: 'Show step by step what would run where; run nothing',
              })
              .option('inventory', { type: 'string', describe: 'Inventory file for every step' })
              .option('yes', {
                alias: 'y',
                type: 'boolean',
                describe: 'Confirm the dangerous actions the workflow runs',
              })
              .option('server', {
                type: 'string',
                describe:
                  'Run it on this rune serve (URL): <file> names a workflow of its [server] workflows; the token comes from RUNE_TOKEN',
              })
              .example(
                '$0 workflow run examples/workflows/restart-then-diagnose.yaml -i nodes=web1,web2 --yes',
                'Restart Docker; gather logs where that failed',
              )
              .example(
                '$0 workflow run restart-then-diagnose -i nodes=web1,web2 --yes --server https://rune.example:8421',
                'Run the server’s workflow of that name there and follow it',
              ),
          run(
            async () =>
              (await import('./workflow.js')).workflowRunCommand as (
                args: WorkflowRunArgs,
                io: CliIo,
              ) => Promise<number>,
          ) as (args: unknown) => Promise<void>,
        )
        .command(
          'validate <file>',
          'Check a workflow: schema, actions, parameters, references, cycles (line:column)',
          (sub) =>
            sub.positional('file', {
              type: 'string',
              demandOption: true,
              describe: 'Workflow file',
            }),
          run(
            async () =>
              (await import('./workflow.js')).workflowValidateCommand as (
                args: WorkflowValidateArgs,
                io: CliIo,
              ) => Promise<number>,
          ) as (args: unknown) => Promise<void>,
        )
        .demandCommand(1, 'name a subcommand: run or validate'),
    handler: () => undefined,
  };
}
