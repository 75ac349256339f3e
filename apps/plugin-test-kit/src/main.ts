/** Entry point of the `rune-plugin-test` binary (bin/rune-plugin-test.js imports dist/main.js). */
import { runCli } from './cli.js';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  isTTY: process.stdout.isTTY === true,
});
