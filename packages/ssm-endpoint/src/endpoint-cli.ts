/**
 * `rune-ssm-endpoint`: starts the local SSM endpoint from the command line and prints how to use
 * it. Loopback only; runs until Ctrl-C.
 *
 *   rune-ssm-endpoint --port 4583 --instances i-0abc123456789def0=web-1 --instances i-0def123456789abc0
 *
 * It runs commands as the user who starts it, so it only accepts requests signed with the access
 * key pair it generates at start (printed next to its URL) or takes from
 * RUNE_SSM_ENDPOINT_ACCESS_KEY_ID / RUNE_SSM_ENDPOINT_SECRET_ACCESS_KEY.
 */
import { parseArgs } from 'node:util';
import { RuneError } from '@rune/protocol';
import { type SsmEndpointInstanceOptions, startSsmEndpoint } from './index.js';

const HELP = `Usage: rune-ssm-endpoint [options]

A local AWS SSM endpoint (AWS JSON 1.1) that really runs AWS-RunShellScript commands on this
machine, one private working directory per instance, as the user running it. Loopback only, and
only requests signed (SigV4) with the access key pair printed at start are answered; set
RUNE_SSM_ENDPOINT_ACCESS_KEY_ID and RUNE_SSM_ENDPOINT_SECRET_ACCESS_KEY to choose the pair.

Options:
  --port <n>                 port to listen on (default 4583; 0 = any free port)
  --host <addr>              loopback address (default 127.0.0.1)
  --instances <id[=name]>    register an instance, e.g. i-0abc123456789def0=web-1 (repeatable,
                             or comma-separated). Default: i-0123456789abcdef0=local
  --offline <id>             register the instance with PingStatus ConnectionLost (repeatable)
  --invocation-delay-ms <n>  GetCommandInvocation answers InvocationDoesNotExist this long
  --verbose                  log every API call
  --help                     this text
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '4583' },
      host: { type: 'string', default: '127.0.0.1' },
      instances: { type: 'string', multiple: true },
      offline: { type: 'string', multiple: true },
      'invocation-delay-ms': { type: 'string' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`rune-ssm-endpoint: invalid --port ${values.port}\n`);
    process.exit(2);
  }
  const specs = (values.instances ?? ['i-0123456789abcdef0=local']).flatMap((item) =>
    item.split(','),
  );
  const instances: SsmEndpointInstanceOptions[] = specs.map((spec) => {
    const [instanceId = '', name] = spec.split('=');
    return { instanceId: instanceId.trim(), ...(name ? { name: name.trim() } : {}) };
  });
  for (const id of values.offline ?? []) {
    instances.push({ instanceId: id, pingStatus: 'ConnectionLost' });
  }
  const delay = values['invocation-delay-ms'];
  const accessKeyId = process.env.RUNE_SSM_ENDPOINT_ACCESS_KEY_ID;
  const secretAccessKey = process.env.RUNE_SSM_ENDPOINT_SECRET_ACCESS_KEY;
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    process.stderr.write(
      'rune-ssm-endpoint: set both RUNE_SSM_ENDPOINT_ACCESS_KEY_ID and RUNE_SSM_ENDPOINT_SECRET_ACCESS_KEY, or neither\n',
    );
    process.exit(2);
  }
  const endpoint = await startSsmEndpoint({
    ...(accessKeyId !== undefined && secretAccessKey !== undefined
      ? { credentials: { accessKeyId, secretAccessKey } }
      : {}),
    host: values.host,
    port,
    instances,
    ...(delay !== undefined ? { faults: { invocationDoesNotExistMs: Number(delay) } } : {}),
    ...(values.verbose ? { log: (line: string) => process.stderr.write(`${line}\n`) } : {}),
  });
  const first = instances[0]?.instanceId ?? 'i-0123456789abcdef0';
  process.stdout.write(`rune-ssm-endpoint listening on ${endpoint.url}
instances: ${instances.map((item) => `${item.instanceId}${item.name ? ` (${item.name})` : ''}${item.pingStatus ? ` [${item.pingStatus}]` : ''}`).join(', ')}

Use it (only requests signed with this key pair are answered; it changes at every start):
  export AWS_ACCESS_KEY_ID=${endpoint.credentials.accessKeyId} AWS_SECRET_ACCESS_KEY=${endpoint.credentials.secretAccessKey} AWS_REGION=us-east-1
  # RUNE config (rune.toml):
  #   [ssm]
  #   endpoint = "${endpoint.url}"
  #   region = "us-east-1"
  rune run noop --node ${first} --use-ssm
  aws ssm send-command --endpoint-url ${endpoint.url} --instance-ids ${first} \\
    --document-name AWS-RunShellScript --parameters 'commands=["uname -a"]'

Ctrl-C to stop.
`);
  const stop = (): void => {
    endpoint.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  if (RuneError.is(error)) {
    // A bad --instances / --host: a usage error with its EPS code, never a stack trace.
    process.stderr.write(`rune-ssm-endpoint: ${error.code}: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  const usage = (error as { code?: unknown })?.code;
  process.stderr.write(
    `rune-ssm-endpoint: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  // node:util parseArgs reports an unknown or malformed option with an ERR_PARSE_ARGS_* code.
  process.exit(typeof usage === 'string' && usage.startsWith('ERR_PARSE_ARGS_') ? 2 : 1);
});
