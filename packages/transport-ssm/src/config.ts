/**
 * `@rune/transport-ssm/config`: the `[ssm]` config section — its schema, its documented defaults
 * and how the SSM transport is built from it. This entry point imports only TypeBox and
 * `@rune/transport`, so validating a config file never loads the AWS SDK; `fromConfig` imports the
 * transport when a node needs it.
 *
 * The section owns the node -> instance id map (`[ssm.instances]`): the transport resolves a
 * node's instance id from it (after the node's own `instanceId`), so planning never sees it.
 */
import type { TransportConfigContext, TransportModule } from '@rune/transport';
import { type Static, Type } from '@sinclair/typebox';
import type { SsmTransportOptions } from './ssm-transport.js';

const opt = Type.Optional;
const nonEmpty = (description: string) => Type.String({ minLength: 1, description });
const positiveInt = (description: string) => Type.Integer({ minimum: 1, description });

/** The `[ssm]` section as an operator may write it: every key optional, unknown keys rejected. */
export const SsmConfigSectionSchema = Type.Object(
  {
    region: opt(nonEmpty('AWS region; otherwise the SDK chain (AWS_REGION, profile).')),
    profile: opt(nonEmpty('Shared-config profile.')),
    endpoint: opt(nonEmpty('API endpoint override (e.g. a local rune-ssm-endpoint).')),
    output_s3_bucket: opt(nonEmpty('Bucket for full command output.')),
    output_s3_prefix: opt(Type.String({ description: 'Key prefix in that bucket.' })),
    poll_interval_ms: opt(positiveInt('GetCommandInvocation poll interval.')),
    max_attempts: opt(positiveInt('SDK retry attempts.')),
    execution_timeout_s: opt(positiveInt('SSM executionTimeout.')),
    remote_cache_dir: opt(nonEmpty('The private plugin cache on the nodes (absolute).')),
    instances: opt(
      Type.Record(Type.String(), Type.String({ pattern: '^m?i-[0-9a-f]{8,17}$' }), {
        description: 'Node name -> instance id.',
      }),
    ),
  },
  { additionalProperties: false },
);

/** The `[ssm]` section as written. */
export type SsmConfigSection = Static<typeof SsmConfigSectionSchema>;

/**
 * What the SSM transport does for a key nobody set: the transport's own defaults, listed for
 * `rune config show` and `rune config init`. A test checks them against its `DEFAULT_SSM_*`
 * constants.
 */
export const ssmConfigDefaults: Readonly<SsmConfigSection> = {
  poll_interval_ms: 1000,
  max_attempts: 10,
  remote_cache_dir: '/var/lib/rune/plugins',
  instances: {},
};

/** The AWS SDK's documented switch for its Node.js version support warning (aws-sdk-js-v3#7983). */
export const AWS_SDK_NODE_VERSION_WARNING_VARIABLE =
  'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/**
 * Turns off the AWS SDK's 9-line NodeVersionSupportWarning for this process, unless the operator
 * set the variable. The SDK prints it at the first client on Node < 22, i.e. on every SSM run on
 * Node 20, which RUNE supports; an operator cannot act on it, and RUNE's own Node requirement is
 * its `engines` field. Only this warning: other process warnings still print.
 */
export function quietAwsSdkNodeVersionWarning(
  env: Record<string, string | undefined> = process.env,
): void {
  env[AWS_SDK_NODE_VERSION_WARNING_VARIABLE] ??= 'true';
}

/**
 * The options of `createSsmTransport` that the `[ssm]` section (as written) and the shared
 * settings give: only what was set, so the transport applies its own defaults. `configFile` is
 * the file an error about a missing region tells the operator to edit.
 */
export function ssmTransportOptions(
  section: Readonly<SsmConfigSection> | undefined,
  context: TransportConfigContext,
): SsmTransportOptions {
  const ssm = section ?? {};
  // Preinstalled plugins: the plan carries each node's remote path ([remote_plugins] base_dir).
  const options: SsmTransportOptions = { configFile: context.configFile };
  if (ssm.region !== undefined) options.region = ssm.region;
  if (ssm.profile !== undefined) options.profile = ssm.profile;
  if (ssm.endpoint !== undefined) options.endpoint = ssm.endpoint;
  if (ssm.output_s3_bucket !== undefined) options.outputS3Bucket = ssm.output_s3_bucket;
  if (ssm.output_s3_prefix !== undefined) options.outputS3Prefix = ssm.output_s3_prefix;
  if (ssm.poll_interval_ms !== undefined) options.pollIntervalMs = ssm.poll_interval_ms;
  if (ssm.max_attempts !== undefined) options.maxAttempts = ssm.max_attempts;
  if (ssm.execution_timeout_s !== undefined) options.executionTimeoutS = ssm.execution_timeout_s;
  if (ssm.remote_cache_dir !== undefined) options.remoteCacheDir = ssm.remote_cache_dir;
  if (ssm.instances !== undefined) options.instances = { ...ssm.instances };
  if (context.onWarning !== undefined) options.onWarning = context.onWarning;
  return options;
}

/** The `[ssm]` body of the starter config (`rune config init`). */
const SSM_CONFIG_TEMPLATE = `# region = "eu-west-1"
# profile = "ops"
# endpoint = "http://127.0.0.1:4566"
# Full output needs an S3 bucket (GetCommandInvocation returns only the first 24,000 characters).
# output_s3_bucket = "my-rune-output"
# output_s3_prefix = "rune/"
# poll_interval_ms = 1000
# max_attempts = 10
# SSM executionTimeout in seconds.
# execution_timeout_s = 3600
# remote_cache_dir = "/var/lib/rune/plugins"
# Node name -> instance id, so --node web01 --use-ssm reaches i-...
# instances = { web01 = "i-0123456789abcdef0" }
`;

/**
 * The `[ssm]` module. `fromConfig` loads `@rune/transport-ssm` (and the AWS SDK) on first use. In
 * an interactive process (the CLI) it first quiets the SDK's Node version warning; an embedding
 * (a server, a Node tool: `interactive` false) keeps its environment untouched.
 */
export const ssmTransportModule: TransportModule<SsmConfigSection> = {
  name: 'ssm',
  configSchema: SsmConfigSectionSchema,
  configDefaults: ssmConfigDefaults,
  configTemplate: SSM_CONFIG_TEMPLATE,
  async fromConfig(section, context) {
    if (context.interactive) quietAwsSdkNodeVersionWarning();
    // By package name, not by path: a bundle of the CLI keeps the AWS SDK out.
    const { createSsmTransport } = await import('@rune/transport-ssm');
    return createSsmTransport(ssmTransportOptions(section, context));
  },
};
