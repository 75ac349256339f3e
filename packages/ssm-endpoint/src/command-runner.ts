/**
 * Runs invocations the way the SSM agent runs `AWS-RunShellScript`: `commands` joined with
 * newlines into `_script.sh` in the instance's orchestration directory, run by `sh` with stdin at
 * /dev/null in a process group of its own; Pending -> InProgress -> Success / Failed / TimedOut /
 * Cancelled; `executionTimeout` and CancelCommand SIGKILL the group (and only it, as the agent
 * does); exit 194 "reboots" the instance and runs the script again; exit 137 reads as a timeout.
 * Delivery faults (offline agent, delivery timeout, undeliverable, slow start) are played here too.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type InstanceState,
  type InvocationState,
  type InvocationStatus,
  isTerminal,
  type SsmEndpointFaults,
} from './endpoint-state.js';

/** Bytes of each stream kept per invocation; beyond it output is counted but dropped. */
const OUTPUT_CAPTURE_LIMIT = 64 * 1024 * 1024;

/** Settings of {@link CommandRunner} (the endpoint's options of the same names). */
export interface CommandRunnerOptions {
  /** How long a delivered command stays Pending before it starts (default 30 ms). */
  pendingMs?: number;
  /** How long a delivery-timeout fault takes to end in DeliveryTimedOut (default: the command's TimeoutSeconds). */
  deliveryTimeoutMs?: number;
  /** How long an instance "reboots" after a script exits 194 (default 300 ms). */
  rebootMs?: number;
  /** Reboots per invocation before the agent gives up (default 3). */
  maxReboots?: number;
  log: (line: string) => void;
  /** Looks up an instance by id (it may have been replaced since the command was sent). */
  instance: (instanceId: string) => InstanceState;
  /** Called once when an invocation reaches a terminal status. */
  onFinish: (invocation: InvocationState) => void;
}

/** Drives invocations from Pending to a terminal status. */
export class CommandRunner {
  private stopped = false;

  constructor(private readonly options: CommandRunnerOptions) {}

  /** Schedules a fresh (Pending) invocation according to the instance's state and faults. */
  start(invocation: InvocationState, faults: SsmEndpointFaults): void {
    const { command } = invocation;
    const pendingMs = this.options.pendingMs ?? 30;
    const instance = this.options.instance(invocation.instanceId);
    const deliveryLimitMs = this.options.deliveryTimeoutMs ?? command.timeoutSeconds * 1000;
    if (faults.undeliverable) {
      this.later(invocation, pendingMs, () =>
        this.finish(invocation, 'Failed', 'Undeliverable', -1),
      );
      return;
    }
    if (faults.deliveryTimeout || instance.pingStatus !== 'Online') {
      this.later(invocation, Math.min(deliveryLimitMs / 2, 1000), () => {
        if (invocation.status === 'Pending') {
          invocation.status = 'Delayed';
          invocation.statusDetails = 'Delayed';
        }
      });
      this.later(invocation, deliveryLimitMs, () =>
        this.finish(invocation, 'TimedOut', 'DeliveryTimedOut', -1),
      );
      return;
    }
    this.later(invocation, pendingMs + (faults.slowStartMs ?? 0), () => this.run(invocation));
  }

  /**
   * CancelCommand for one invocation: a running script's group is SIGKILLed (Cancelling, then
   * Cancelled once it exited); one that has not started is Cancelled at once.
   */
  cancel(invocation: InvocationState): void {
    if (isTerminal(invocation.status)) return;
    const child = invocation.child;
    if (invocation.status === 'InProgress' && child?.pid !== undefined && child.exitCode === null) {
      invocation.ending = 'cancel';
      invocation.status = 'Cancelling';
      invocation.statusDetails = 'Cancelling';
      killGroup(child.pid);
    } else {
      this.finish(invocation, 'Cancelled', 'Cancelled', -1);
    }
  }

  /** Process group ids of the scripts still running among `invocations`. */
  runningProcessGroups(invocations: Iterable<InvocationState>): number[] {
    const groups: number[] = [];
    for (const invocation of invocations) {
      const pid = invocation.child?.pid;
      const child = invocation.child;
      if (pid !== undefined && child?.exitCode === null && child.signalCode === null) {
        groups.push(pid);
      }
    }
    return groups;
  }

  /**
   * Stops everything: no timer fires any more, every running script's group is SIGKILLed, and
   * the promise resolves once they exited (at most 2 s).
   */
  async stop(invocations: Iterable<InvocationState>): Promise<void> {
    this.stopped = true;
    const exits: Promise<void>[] = [];
    for (const invocation of invocations) {
      for (const timer of invocation.timers) clearTimeout(timer);
      const child = invocation.child;
      if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        exits.push(new Promise((resolve) => child.once('exit', () => resolve())));
        killGroup(child.pid);
      }
    }
    await Promise.race([Promise.all(exits), new Promise((resolve) => setTimeout(resolve, 2000))]);
  }

  private later(invocation: InvocationState, ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      if (!isTerminal(invocation.status) && !this.stopped) action();
    }, ms);
    invocation.timers.push(timer);
  }

  private run(invocation: InvocationState): void {
    const instance = this.options.instance(invocation.instanceId);
    const { command } = invocation;
    const dir = join(
      instance.dir,
      'document',
      'orchestration',
      command.commandId,
      'awsrunShellScript',
      '0.awsrunshellscript',
    );
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const scriptPath = join(dir, '_script.sh');
    writeFileSync(scriptPath, `${(command.parameters.commands ?? []).join('\n')}\n`, {
      mode: 0o700,
    });
    const workingDirectory = command.parameters.workingDirectory?.[0];
    invocation.status = 'InProgress';
    invocation.statusDetails = 'InProgress';
    invocation.startedAt ??= Date.now();
    invocation.stdout = [];
    invocation.stdoutBytes = 0;
    invocation.stderr = [];
    invocation.stderrBytes = 0;
    const child = spawn('sh', [scriptPath], {
      cwd: workingDirectory ? workingDirectory : dir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: process.env.HOME ?? '/root' },
    });
    invocation.child = child;
    this.options.log(`run ${command.commandId} on ${invocation.instanceId} pid ${child.pid}`);
    child.stdout?.on('data', (chunk: Buffer) => {
      if (invocation.stdoutBytes < OUTPUT_CAPTURE_LIMIT) invocation.stdout.push(chunk);
      invocation.stdoutBytes += chunk.byteLength;
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      if (invocation.stderrBytes < OUTPUT_CAPTURE_LIMIT) invocation.stderr.push(chunk);
      invocation.stderrBytes += chunk.byteLength;
    });
    const executionTimer = setTimeout(() => {
      invocation.ending = 'timeout';
      if (child.pid !== undefined) killGroup(child.pid);
    }, command.executionTimeoutS * 1000);
    invocation.timers.push(executionTimer);
    let settled = false;
    const settle = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(executionTimer);
      // Whatever the script left behind in its group dies with it, as under the agent.
      if (child.pid !== undefined) killGroup(child.pid);
      this.exited(invocation, code, signal);
    };
    child.on('error', () => settle(127, null));
    child.on('exit', (code, signal) => {
      // Give the pipes a moment to drain; a background child holding them open must not stall us.
      const drain = setTimeout(() => settle(code, signal), 200);
      child.once('close', () => {
        clearTimeout(drain);
        settle(code, signal);
      });
    });
  }

  private exited(
    invocation: InvocationState,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    if (isTerminal(invocation.status)) return;
    const status = code ?? 128 + signalNumber(signal);
    if (invocation.ending === 'cancel') {
      this.finish(invocation, 'Cancelled', 'Cancelled', -1);
    } else if (invocation.ending === 'timeout') {
      this.finish(invocation, 'TimedOut', 'ExecutionTimedOut', 137);
    } else if (status === 194) {
      this.reboot(invocation);
    } else if (status === 137) {
      // The agent reads 137 as "stopped preemptively": a timeout, whatever really happened.
      this.finish(invocation, 'TimedOut', 'ExecutionTimedOut', 137);
    } else if (status === 0) {
      this.finish(invocation, 'Success', 'Success', 0);
    } else {
      this.finish(invocation, 'Failed', 'Failed', status);
    }
  }

  /** Exit 194: the agent reboots the instance, then runs the document again. */
  private reboot(invocation: InvocationState): void {
    const instance = this.options.instance(invocation.instanceId);
    instance.reboots += 1;
    invocation.reboots += 1;
    this.options.log(
      `reboot ${invocation.instanceId} (exit 194 of ${invocation.command.commandId})`,
    );
    if (invocation.reboots > (this.options.maxReboots ?? 3)) {
      this.finish(invocation, 'Failed', 'Failed', 194);
      return;
    }
    instance.pingStatus = 'ConnectionLost';
    const timer = setTimeout(() => {
      instance.pingStatus = 'Online';
      if (!isTerminal(invocation.status) && !this.stopped) this.run(invocation);
    }, this.options.rebootMs ?? 300);
    invocation.timers.push(timer);
  }

  private finish(
    invocation: InvocationState,
    status: InvocationStatus,
    statusDetails: string,
    responseCode: number,
  ): void {
    for (const timer of invocation.timers) clearTimeout(timer);
    invocation.timers = [];
    invocation.status = status;
    invocation.statusDetails = statusDetails;
    invocation.responseCode = responseCode;
    invocation.endedAt = Date.now();
    this.options.log(
      `end ${invocation.command.commandId} on ${invocation.instanceId}: ${status}/${statusDetails} (${responseCode})`,
    );
    this.options.onFinish(invocation);
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1 };
  return signal === null ? 0 : (numbers[signal] ?? 9);
}
