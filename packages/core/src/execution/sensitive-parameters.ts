/**
 * Sensitive parameters never travel through a transport that embeds the request in its command.
 *
 * Over SSH the RCS document goes to the plugin's stdin and is seen by nobody else. A transport
 * such as SSM Run Command has no stdin: it embeds the request in the command it sends, where
 * the provider's API history and logs (ListCommands, the console, CloudTrail) show every
 * parameter value to anyone allowed to read them. Such a transport declares
 * `capabilities.embedsRequestInCommand`, and core refuses a run that supplies a parameter the
 * manifest marks `sensitive` on it: for the whole run when it is planned (`Rune.plan`, before
 * anything is contacted, audited as a refusal), and again per node in the execution step right before
 * `exec` for callers of `executePlan`. Sensitive parameters filled from a manifest default are
 * not secrets (the manifest is public) and do not count.
 */
import { RuneError } from '@rune/protocol';
import type { Transport } from '@rune/transport';
import type { ExecutionPlan } from '../planning/plan-run.js';
import type { TransportRegistry } from './transport-registry.js';

/**
 * The SENSITIVE_PARAMETER_REFUSED error for running `plan` on `nodes` through `transport`, or
 * undefined when the run is allowed (no sensitive parameter supplied, or the transport keeps the
 * request out of its command).
 */
export function sensitiveParameterRefusal(
  plan: Pick<ExecutionPlan, 'action' | 'supplied_sensitive_parameters'>,
  transport: Pick<Transport, 'name' | 'capabilities'>,
  nodes: readonly string[] = [],
): RuneError | undefined {
  const names = plan.supplied_sensitive_parameters;
  if (names.length === 0 || transport.capabilities.embedsRequestInCommand !== true) {
    return undefined;
  }
  const listed = names.join(', ');
  return new RuneError(
    'SENSITIVE_PARAMETER_REFUSED',
    `${names.length === 1 ? 'parameter' : 'parameters'} ${listed} of ${plan.action} ${names.length === 1 ? 'is' : 'are'} marked sensitive, and transport ${transport.name} embeds the request in its remote command, where the provider's command history and logs would show ${names.length === 1 ? 'it' : 'them'} (e.g. SSM ListCommands, CloudTrail); nothing was sent. Use SSH or a secret reference`,
    {
      source: {
        component: 'rune-core',
        action: plan.action,
        ...(nodes.length === 1 && nodes[0] !== undefined ? { node: nodes[0] } : {}),
      },
      details: {
        parameters: [...names],
        transport: transport.name,
        nodes: nodes.slice(0, 100),
      },
    },
  );
}

/**
 * Throws SENSITIVE_PARAMETER_REFUSED when the plan supplies a sensitive parameter and any of its
 * nodes uses a transport that embeds the request in its command. Creating a transport contacts
 * nothing; one that cannot be created is left to the execution step, which reports it per node.
 */
export async function assertSensitiveParametersAllowed(
  plan: Pick<ExecutionPlan, 'action' | 'supplied_sensitive_parameters' | 'nodes'>,
  transports: Pick<TransportRegistry, 'get'>,
): Promise<void> {
  if (plan.supplied_sensitive_parameters.length === 0) return;
  const nodesByTransport = new Map<string, string[]>();
  for (const node of plan.nodes) {
    const names = nodesByTransport.get(node.transport) ?? [];
    names.push(node.target.name);
    nodesByTransport.set(node.transport, names);
  }
  for (const [name, nodes] of nodesByTransport) {
    let transport: Transport;
    try {
      transport = await transports.get(name);
    } catch {
      continue;
    }
    const refusal = sensitiveParameterRefusal(plan, transport, nodes);
    if (refusal !== undefined) throw refusal;
  }
}
