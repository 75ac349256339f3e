/**
 * The approval desk: where `RunManager.submit()` asks the policy about a planned run, and where a
 * run that needs four eyes waits. A run is held when an allowing rule says `require_approval`,
 * when its manifest says `dangerous` (unless the policy turns that off), or when the caller asked
 * (`submit(..., { requireApproval })`). A held run is released to the queue only when `quorum`
 * distinct principals other than the requester (and other than tokens that requester minted),
 * each holding `approve` for that action and those nodes, approved it before it expired, and the
 * request planned again still has the binding they approved.
 */
import type { ExecutionPlan } from '@rune/core';
import { RuneError } from '@rune/protocol';
import type {
  LaunchContext,
  LaunchRequest,
  PlannedLaunch,
  ServerLauncher,
} from '../runs/launcher.js';
import type { RunStore, StoredRun } from '../store/run-store.js';
import {
  type ApprovalBinding,
  type ApprovalState,
  bindingOf,
  expiredApprovals,
  getApproval,
  insertApprovalRequest,
  insertVote,
  markRunQueued,
  notifyWebhook,
  settleApproval,
} from './approvals.js';
import { type PolicyEnforcer, tokenBounds } from './enforcer.js';
import { type PolicyDecision, type PolicySubject, rolesOf } from './policy.js';
import type { PolicyVerb } from './policy-schema.js';

const source = { component: 'rune-server' } as const;

/**
 * A hold a caller asks for (`submit(..., { requireApproval })`): the alerts storm breaker, a
 * workflow's approval step.
 */
export interface ApprovalRequirement {
  /** Shown to approvers (and in the webhook notice). */
  reason: string;
  quorum?: number;
  /** Expires sooner than the policy's `approvals.expires` (never later). */
  expiresMs?: number;
  /**
   * Only these principals, subjects or roles may approve (a workflow step's `approvers`), on top
   * of the `approve` verb the policy grants.
   */
  approvers?: readonly string[];
}

/** Why and how a run is held. */
export interface HoldSpec {
  quorum: number;
  reason: string;
  rules: string[];
  expiresMs?: number;
  approvers?: readonly string[];
}

/** A held run handed back to the queue. */
export interface ReleasedRun {
  id: string;
  planned: PlannedLaunch;
  context: LaunchContext;
  nodes: string[];
}

/** A vote's input. */
export interface VoteInput {
  comment?: string;
  /** The binding sha256 the approver saw; refused when it is not the run's. */
  binding?: string;
}

/** The approval state of a run, as the API shows it. */
export interface ApprovalView {
  run_id: string;
  state: string;
  requester: string;
  quorum: number;
  approvals: number;
  reason: string;
  rules: string[];
  binding_sha256: string;
  binding: ApprovalBinding;
  created_at: string;
  expires_at: string;
  decided_at: string | null;
  votes: { approver: string; decision: string; comment: string; created_at: string }[];
}

/** The desk. */
export interface ApprovalDesk {
  /** Decides a planned run for its requester (audited); throws POLICY_DENIED. */
  authorizePlanned(
    verb: Extract<PolicyVerb, 'run' | 'dry-run'>,
    planned: PlannedLaunch,
    context: LaunchContext,
    runId: string,
    /** See DecisionContext.deferRecord (the dry run's single audit fsync). */
    deferRecord?: (recorded: Promise<void>) => void,
  ): Promise<PolicyDecision | undefined>;
  /** Whether (and why) a run must wait for approval. */
  holdFor(
    decision: PolicyDecision | undefined,
    planned: PlannedLaunch,
    requested: ApprovalRequirement | undefined,
  ): HoldSpec | undefined;
  /** Records the approval request of an inserted `awaiting_approval` run and notifies. */
  hold(
    id: string,
    request: LaunchRequest,
    planned: PlannedLaunch,
    context: LaunchContext,
    spec: HoldSpec,
  ): Promise<void>;
  approve(id: string, subject: PolicySubject, input: VoteInput): Promise<ApprovalView>;
  reject(id: string, subject: PolicySubject, input: VoteInput): Promise<ApprovalView>;
  /** The approval state of a run; throws NOT_FOUND when it never needed one. */
  view(id: string): Promise<ApprovalView>;
  /** Ends held runs whose time ran out; returns how many. */
  expire(): Promise<number>;
  /** Ends a held run as cancelled. */
  cancelHeld(run: StoredRun, reason: string): Promise<void>;
}

/** Options of {@link createApprovalDesk}. */
export interface ApprovalDeskOptions {
  store: RunStore;
  launcher: ServerLauncher;
  policy?: PolicyEnforcer;
  now: () => Date;
  warn: (line: string) => void;
  linkBase?: () => string | undefined;
  release: (run: ReleasedRun) => void;
  notify: (id: string) => void;
  subjectOf: (context: LaunchContext) => PolicySubject;
}

interface Pending {
  request: LaunchRequest;
  context: LaunchContext;
}

function viewOf(state: ApprovalState): ApprovalView {
  const { request, votes } = state;
  return {
    run_id: request.run_id,
    state: request.state,
    requester: request.requester,
    quorum: request.quorum,
    approvals: votes.filter((vote) => vote.decision === 'approve').length,
    reason: request.reason,
    rules: JSON.parse(request.rules_json) as string[],
    binding_sha256: request.binding_sha256,
    binding: JSON.parse(request.binding_json) as ApprovalBinding,
    created_at: request.created_at,
    expires_at: request.expires_at,
    decided_at: request.decided_at,
    votes: votes.map((vote) => ({
      approver: vote.approver,
      decision: vote.decision,
      comment: vote.comment,
      created_at: vote.created_at,
    })),
  };
}

/** Creates the desk. */
export function createApprovalDesk(options: ApprovalDeskOptions): ApprovalDesk {
  const { store, launcher, policy, now, warn } = options;
  const db = store.db;
  /** Held runs' requests in clear (sensitive values live only here, like queued runs'). */
  const pending = new Map<string, Pending>();

  const facts = (action: string): { tags: string[]; dangerous: boolean } => {
    try {
      const { manifest } = launcher.describeAction(action);
      return { tags: manifest.tags, dangerous: manifest.dangerous };
    } catch {
      return { tags: [], dangerous: true };
    }
  };

  const pluginOf = (plan: ExecutionPlan) => ({
    version: plan.plugin.version,
    sha256: plan.plugin.sha256,
    path: plan.plugin.path,
    source: plan.plugin.source,
  });

  const decideRun = (
    verb: Extract<PolicyVerb, 'run' | 'dry-run'>,
    planned: PlannedLaunch,
    context: LaunchContext,
    runId: string,
    deferRecord?: (recorded: Promise<void>) => void,
  ): Promise<PolicyDecision | undefined> => {
    if (policy === undefined) return Promise.resolve(undefined);
    const plan = planned.plan;
    return policy.authorize(
      options.subjectOf(context),
      {
        verb,
        action: plan.action,
        tags: facts(plan.action).tags,
        nodes: plan.nodes.map((node) => node.target.name),
        params: plan.parameters,
      },
      {
        traceId: plan.trace_id,
        runId,
        plugin: pluginOf(plan),
        params: planned.redactedPlan.parameters,
        source: context.source,
        ...(deferRecord === undefined ? {} : { deferRecord }),
      },
    );
  };

  const end = async (
    id: string,
    code:
      | 'APPROVAL_REJECTED'
      | 'APPROVAL_EXPIRED'
      | 'APPROVAL_MISMATCH'
      | 'POLICY_DENIED'
      | 'RUN_CANCELLED'
      | 'RUN_INTERRUPTED',
    message: string,
    status: 'cancelled' | 'failed' | 'interrupted',
  ): Promise<void> => {
    const run = await store.getRun(id);
    const error = new RuneError(code, message, {
      source,
      ...(run === undefined ? {} : { traceId: run.trace_id }),
    });
    await store.finishWithoutEvents(id, {
      status,
      exit_code: error.exitCode === 0 ? 4 : error.exitCode,
      error_json: JSON.stringify(error.toJSON()),
      finished_at: now().toISOString(),
    });
    const held = pending.get(id);
    pending.delete(id);
    if (run !== undefined) {
      await launcher
        .recordNotStarted(
          { action: run.action, nodes: JSON.parse(run.nodes) as string[], dryRun: false },
          error,
          held?.context ?? {
            principal: run.principal,
            source: run.source as LaunchContext['source'],
          },
        )
        .catch(() => undefined);
    }
    options.notify(id);
  };

  const load = async (id: string): Promise<{ run: StoredRun; state: ApprovalState }> => {
    const run = /^[0-9a-f-]{36}$/.test(id) ? await store.getRun(id) : undefined;
    const state = run === undefined ? undefined : await getApproval(db, run.id);
    if (run === undefined || state === undefined) {
      throw new RuneError('NOT_FOUND', `no run ${id.slice(0, 64)} that needs approval`, { source });
    }
    return { run, state };
  };

  const expireOne = async (id: string): Promise<boolean> => {
    if (!(await settleApproval(db, id, 'expired', now().toISOString()))) return false;
    await end(
      id,
      'APPROVAL_EXPIRED',
      'the run waited for approval longer than approvals.expires and will not start; submit it again',
      'cancelled',
    );
    return true;
  };

  const pendingOrThrow = async (run: StoredRun, state: ApprovalState): Promise<void> => {
    if (
      state.request.state === 'pending' &&
      Date.parse(state.request.expires_at) <= now().getTime()
    ) {
      await expireOne(run.id);
      throw new RuneError(
        'APPROVAL_EXPIRED',
        `run ${run.id} waited too long for approval and will not start`,
        {
          source,
          details: { run_id: run.id, expires_at: state.request.expires_at },
        },
      );
    }
    if (state.request.state !== 'pending') {
      throw new RuneError(
        'APPROVAL_NOT_PENDING',
        `run ${run.id} is not awaiting approval (${state.request.state})`,
        {
          source,
          details: { run_id: run.id, state: state.request.state },
        },
      );
    }
  };

  /** Refuses approvers that are the requester, or act for them (a token the requester minted). */
  const assertNotSelf = async (subject: PolicySubject, requester: string): Promise<void> => {
    const bounds = await tokenBounds(db, subject);
    const selves = [subject.principal, ...bounds.map((bound) => bound.principal)];
    if (selves.includes(requester)) {
      throw new RuneError(
        'APPROVAL_SELF_FORBIDDEN',
        `${subject.principal} requested this run${subject.principal === requester ? '' : ' (through the token it minted)'}; another principal must approve it`,
        { source, details: { requester } },
      );
    }
  };

  /**
   * A hold that names its approvers (a workflow step's `approvers`) takes votes from them only:
   * the principal itself, one of its subjects, or a role it holds (directly or bound by the
   * policy). The policy's `approve` verb is required as well.
   */
  const assertListedApprover = async (subject: PolicySubject, run: StoredRun): Promise<void> => {
    const row = await db
      .selectFrom('approval_approvers')
      .select('approvers_json')
      .where('run_id', '=', run.id)
      .executeTakeFirst();
    if (row === undefined) return;
    const approvers = JSON.parse(row.approvers_json) as string[];
    const roles = policy === undefined ? subject.roles : rolesOf(policy.current(), subject);
    const held = new Set([subject.principal, ...subject.subjects, ...roles]);
    if (approvers.some((approver) => held.has(approver))) return;
    throw new RuneError(
      'POLICY_DENIED',
      `only ${approvers.slice(0, 10).join(', ')} may approve run ${run.id}; ${subject.principal} is none of them`,
      { source, details: { approvers: approvers.slice(0, 32), principal: subject.principal } },
    );
  };

  const authorizeApprover = async (subject: PolicySubject, run: StoredRun): Promise<void> => {
    if (policy === undefined) return;
    await policy.authorize(
      subject,
      {
        verb: 'approve',
        action: run.action,
        tags: facts(run.action).tags,
        nodes: JSON.parse(run.nodes) as string[],
      },
      { traceId: run.trace_id, runId: run.id },
    );
  };

  const auditVote = (
    run: StoredRun,
    subject: PolicySubject,
    decision: string,
    comment: string,
    binding: string,
  ): Promise<void> =>
    launcher
      .recordAudit(
        {
          event: 'approval',
          run_id: run.id,
          operator: subject.principal,
          action: run.action,
          plugin: null,
          node: null,
          transport: null,
          status: decision,
          error_code: null,
          error_message: null,
          duration_ms: null,
          trace_id: run.trace_id,
          params: null,
          nodes: (JSON.parse(run.nodes) as string[]).slice(0, 100),
          metadata: {
            comment: comment.slice(0, 500),
            binding_sha256: binding,
            requester: run.principal,
          },
        },
        { principal: subject.principal, source: 'api' },
      )
      .catch((error: unknown) =>
        warn(`could not audit an approval vote: ${RuneError.from(error).message}`),
      );

  /** Plans the held request again; its binding must be the approved one. */
  const replan = async (run: StoredRun, state: ApprovalState): Promise<ReleasedRun> => {
    const held = pending.get(run.id);
    if (held === undefined && run.has_sensitive === 1) {
      await settleApproval(db, run.id, 'invalidated', now().toISOString());
      await end(
        run.id,
        'RUN_INTERRUPTED',
        'its sensitive parameters were held only in the memory of the server that stopped; submit it again',
        'interrupted',
      );
      throw new RuneError(
        'APPROVAL_NOT_PENDING',
        `run ${run.id} lost its sensitive parameters in a restart and ended`,
        { source },
      );
    }
    const request = held?.request ?? (JSON.parse(run.request_json) as LaunchRequest);
    // Held by another instance, or before a restart: the subject recorded when it was held.
    const recorded = state.request.requester_subject_json;
    const context = held?.context ?? {
      principal: run.principal,
      source: run.source as LaunchContext['source'],
      ...(recorded === null ? {} : { subject: JSON.parse(recorded) as PolicySubject }),
    };
    let planned: PlannedLaunch;
    try {
      planned = await launcher.plan(request, context, run.trace_id);
    } catch (error) {
      await settleApproval(db, run.id, 'invalidated', now().toISOString());
      await end(
        run.id,
        'APPROVAL_MISMATCH',
        `the approved request no longer plans: ${RuneError.from(error).message}`,
        'failed',
      );
      throw new RuneError(
        'APPROVAL_MISMATCH',
        'the approved request no longer plans; it was ended',
        { source, cause: error },
      );
    }
    const current = bindingOf(planned.redactedPlan);
    if (current.sha256 !== state.request.binding_sha256) {
      await settleApproval(db, run.id, 'invalidated', now().toISOString());
      const changed = (Object.keys(current.binding) as (keyof ApprovalBinding)[]).filter(
        (key) =>
          JSON.stringify(current.binding[key]) !==
          JSON.stringify((JSON.parse(state.request.binding_json) as ApprovalBinding)[key]),
      );
      const message = `the request changed since it was approved (${changed.join(', ')}); the approval is void and the run ended`;
      await end(run.id, 'APPROVAL_MISMATCH', message, 'failed');
      throw new RuneError('APPROVAL_MISMATCH', message, { source, details: { changed } });
    }
    return { id: run.id, planned, context, nodes: current.binding.nodes };
  };

  const desk: ApprovalDesk = {
    authorizePlanned: decideRun,

    holdFor(decision, planned, requested) {
      const settings = policy?.current().approvals;
      const reasons: string[] = [];
      let quorum = 0;
      if (decision !== undefined && decision.quorum > 0) {
        quorum = decision.quorum;
        reasons.push(`rule ${decision.rules.join(', ')} requires approval`);
      }
      if (settings?.dangerous === true && facts(planned.plan.action).dangerous) {
        quorum = Math.max(quorum, settings.quorum);
        reasons.push(`${planned.plan.action} is marked dangerous`);
      }
      if (requested !== undefined) {
        quorum = Math.max(quorum, requested.quorum ?? settings?.quorum ?? 1);
        reasons.push(requested.reason);
      }
      if (quorum === 0) return undefined;
      return {
        quorum,
        reason: reasons.join('; '),
        rules: decision?.rules ?? [],
        ...(requested?.expiresMs === undefined ? {} : { expiresMs: requested.expiresMs }),
        ...(requested?.approvers === undefined ? {} : { approvers: requested.approvers }),
      };
    },

    async hold(id, request, planned, context, spec) {
      const created = now();
      const settings = policy?.current().approvals;
      const policyExpiresMs = settings?.expiresMs ?? 86_400_000;
      const expiresAt = new Date(
        created.getTime() + Math.min(policyExpiresMs, spec.expiresMs ?? policyExpiresMs),
      ).toISOString();
      const { binding, sha256 } = bindingOf(planned.redactedPlan);
      await insertApprovalRequest(db, {
        run_id: id,
        requester: context.principal,
        requester_subject_json: JSON.stringify(options.subjectOf(context)),
        binding_sha256: sha256,
        binding_json: JSON.stringify(binding),
        quorum: spec.quorum,
        reason: spec.reason.slice(0, 1000),
        rules_json: JSON.stringify(spec.rules),
        state: 'pending',
        created_at: created.toISOString(),
        expires_at: expiresAt,
        decided_at: null,
      });
      if (spec.approvers !== undefined && spec.approvers.length > 0) {
        await db
          .insertInto('approval_approvers')
          .values({ run_id: id, approvers_json: JSON.stringify(spec.approvers) })
          .execute();
      }
      pending.set(id, { request, context });
      const webhook = settings?.webhook;
      if (webhook !== undefined) {
        const base = settings?.linkBase ?? options.linkBase?.() ?? '';
        void notifyWebhook(
          webhook,
          {
            runId: id,
            action: planned.plan.action,
            nodes: binding.nodes,
            requester: context.principal,
            quorum: spec.quorum,
            reason: spec.reason,
            expiresAt,
            link: `${base.replace(/\/$/, '')}/v1/runs/${id}`,
          },
          warn,
        );
      }
    },

    async approve(id, subject, input) {
      const { run, state } = await load(id);
      await pendingOrThrow(run, state);
      await assertNotSelf(subject, state.request.requester);
      await assertListedApprover(subject, run);
      await authorizeApprover(subject, run);
      if (input.binding !== undefined && input.binding !== state.request.binding_sha256) {
        throw new RuneError(
          'APPROVAL_MISMATCH',
          "this approval names another request (its binding sha256 is not this run's); look at the run again",
          {
            source,
            details: { expected: state.request.binding_sha256, given: input.binding.slice(0, 64) },
          },
        );
      }
      const comment = (input.comment ?? '').slice(0, 2000);
      const inserted = await insertVote(db, {
        run_id: run.id,
        approver: subject.principal,
        decision: 'approve',
        comment,
        binding_sha256: state.request.binding_sha256,
        created_at: now().toISOString(),
      });
      if (!inserted) {
        throw new RuneError(
          'APPROVAL_NOT_PENDING',
          `${subject.principal} already voted on run ${run.id}`,
          { source },
        );
      }
      await auditVote(run, subject, 'approved', comment, state.request.binding_sha256);
      const after = (await getApproval(db, run.id)) as ApprovalState;
      const approvals = after.votes.filter((vote) => vote.decision === 'approve').length;
      if (approvals >= after.request.quorum) {
        const released = await replan(run, after);
        // The requester's rights are decided again: the policy may have changed while it waited.
        try {
          await decideRun('run', released.planned, released.context, run.id);
        } catch (error) {
          await settleApproval(db, run.id, 'invalidated', now().toISOString());
          await end(run.id, 'POLICY_DENIED', RuneError.from(error).message, 'failed');
          throw error;
        }
        if (await settleApproval(db, run.id, 'approved', now().toISOString())) {
          await markRunQueued(db, run.id);
          pending.delete(run.id);
          options.release(released);
        }
      }
      return viewOf((await getApproval(db, run.id)) as ApprovalState);
    },

    async reject(id, subject, input) {
      const { run, state } = await load(id);
      await pendingOrThrow(run, state);
      if (subject.principal !== state.request.requester) {
        await assertListedApprover(subject, run);
        await authorizeApprover(subject, run);
      }
      const comment = (input.comment ?? '').slice(0, 2000);
      await insertVote(db, {
        run_id: run.id,
        approver: subject.principal,
        decision: 'reject',
        comment,
        binding_sha256: state.request.binding_sha256,
        created_at: now().toISOString(),
      });
      await auditVote(run, subject, 'rejected', comment, state.request.binding_sha256);
      if (await settleApproval(db, run.id, 'rejected', now().toISOString())) {
        await end(
          run.id,
          'APPROVAL_REJECTED',
          `rejected by ${subject.principal}${comment === '' ? '' : `: ${comment.slice(0, 200)}`}`,
          'cancelled',
        );
      }
      return viewOf((await getApproval(db, run.id)) as ApprovalState);
    },

    async view(id) {
      const { run, state } = await load(id);
      if (
        state.request.state === 'pending' &&
        Date.parse(state.request.expires_at) <= now().getTime()
      ) {
        await expireOne(run.id);
        return viewOf((await getApproval(db, run.id)) as ApprovalState);
      }
      return viewOf(state);
    },

    async expire() {
      let count = 0;
      for (const id of await expiredApprovals(db, now().toISOString())) {
        if (await expireOne(id)) count++;
      }
      return count;
    },

    async cancelHeld(run, reason) {
      await settleApproval(db, run.id, 'cancelled', now().toISOString());
      await end(run.id, 'RUN_CANCELLED', reason, 'cancelled');
    },
  };
  return desk;
}
