/**
 * The RBAC routes: four-eyes votes on held runs (`POST /v1/runs/{id}/approve|reject`, `GET
 * /v1/runs/{id}/approval`), tokens minted through the API (`POST /v1/tokens`, never stronger than
 * their creator), and a dry decision (`POST /v1/policy/check`) for the caller itself.
 */
import { RuneError } from '@rune/protocol';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { tokenCacheOf } from '../auth/token-cache.js';
import { createToken, type Principal } from '../auth/tokens.js';
import { errorResponses } from '../http/api-schemas.js';
import type { ApiInstance, RouteContext } from '../http/route-context.js';
import { tokenBounds } from './enforcer.js';
import { rolesOf } from './policy.js';
import { POLICY_VERBS } from './policy-schema.js';
import { actionTags } from './route-guard.js';
import { registerPolicyChecksRoute } from './routes-checks.js';

const source = { component: 'rune-server' } as const;
const errors = errorResponses(400, 401, 403, 404, 409, 413, 415, 429, 500, 503);
const closed = <T extends Parameters<typeof Type.Object>[0]>(properties: T, description?: string) =>
  Type.Object(properties, {
    additionalProperties: false,
    ...(description === undefined ? {} : { description }),
  });

const RunIdParams = closed({ id: Type.String({ maxLength: 64 }) });

const VoteBodySchema = closed(
  {
    comment: Type.Optional(
      Type.String({ maxLength: 2000, description: 'Why; kept with the vote.' }),
    ),
    binding_sha256: Type.Optional(
      Type.String({
        pattern: '^[0-9a-f]{64}$',
        description:
          "The binding the approver reviewed (from GET /v1/runs/{id}/approval); refused with APPROVAL_MISMATCH when it is not the run's.",
      }),
    ),
  },
  'A vote on a held run.',
);

const ApprovalViewSchema = closed(
  {
    run_id: Type.String(),
    state: Type.String({
      description: 'pending | approved | rejected | expired | invalidated | cancelled',
    }),
    requester: Type.String(),
    quorum: Type.Integer(),
    approvals: Type.Integer(),
    reason: Type.String(),
    rules: Type.Array(Type.String()),
    binding_sha256: Type.String(),
    binding: closed({
      action: Type.String(),
      plugin_sha256: Type.String(),
      nodes: Type.Array(Type.String()),
      params_sha256: Type.String(),
    }),
    created_at: Type.String(),
    expires_at: Type.String(),
    decided_at: Type.Union([Type.String(), Type.Null()]),
    votes: Type.Array(
      closed({
        approver: Type.String(),
        decision: Type.String(),
        comment: Type.String(),
        created_at: Type.String(),
      }),
    ),
  },
  'The approval state of a held run.',
);

const TokenBodySchema = closed({
  name: Type.String({ minLength: 1, maxLength: 64 }),
  roles: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 20 }),
  expires: Type.Optional(
    Type.String({ minLength: 2, maxLength: 20, description: 'e.g. 90d (default 90d)' }),
  ),
});

const TokenCreatedSchema = closed({
  token: Type.String({ description: 'Shown once; only its hash is stored.' }),
  id: Type.String(),
  name: Type.String(),
  role: Type.String(),
  created_at: Type.String(),
  expires_at: Type.Union([Type.String(), Type.Null()]),
  bounded_by: Type.Array(Type.String()),
});

const CheckBodySchema = closed({
  verb: Type.Union(POLICY_VERBS.map((verb) => Type.Literal(verb))),
  action: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  nodes: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { maxItems: 1000 }),
  ),
});

const DecisionSchema = closed({
  allowed: Type.Boolean(),
  rule: Type.String(),
  rules: Type.Array(Type.String()),
  reason: Type.String(),
  quorum: Type.Integer(),
  roles: Type.Array(Type.String()),
  offending: Type.Array(
    closed({ node: Type.String(), rule: Type.String(), reason: Type.String() }),
  ),
});

/** The authenticated principal of a request; AUTH_TOKEN_MISSING when there is none. */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === undefined) {
    throw new RuneError('AUTH_TOKEN_MISSING', 'this endpoint needs a bearer token', { source });
  }
  return request.principal;
}

/** Registers the RBAC routes. */
export function registerPolicyRoutes(app: ApiInstance, context: RouteContext): void {
  const { manager, policy } = context;

  app.get(
    '/v1/runs/:id/approval',
    {
      config: { minRole: 'authenticated' },
      schema: {
        summary: 'The approval state of a held run',
        description:
          'Who asked, why it is held, the quorum, the votes, when it expires, and the binding (action, plugin sha256, nodes, parameters hash) an approval applies to. Needs view or approve on the run.',
        tags: ['approvals'],
        params: RunIdParams,
        response: { 200: ApprovalViewSchema, ...errors },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const view = await manager.approvals.view(request.params.id);
      const subject = policy.subjectOf(principal);
      const tags = actionTags(context.launcher, view.binding.action);
      const access = { action: view.binding.action, tags, nodes: view.binding.nodes };
      const allowed =
        (await policy.evaluate(subject, { verb: 'view', ...access })).allowed ||
        (await policy.evaluate(subject, { verb: 'approve', ...access })).allowed;
      if (!allowed) await policy.authorize(subject, { verb: 'view', ...access });
      return view;
    },
  );

  for (const decision of ['approve', 'reject'] as const) {
    app.post(
      `/v1/runs/:id/${decision}`,
      {
        config: { minRole: 'authenticated' },
        schema: {
          summary: decision === 'approve' ? 'Approve a held run' : 'Reject a held run',
          description:
            decision === 'approve'
              ? "One vote of a principal holding approve for the run's action and every node. The requester cannot approve (APPROVAL_SELF_FORBIDDEN); an expired request is APPROVAL_EXPIRED; with binding_sha256, a vote for another request is APPROVAL_MISMATCH. At the quorum the request is planned again and starts only if its binding is unchanged."
              : 'Ends the held run as cancelled (APPROVAL_REJECTED). Needs approve on the run (the requester may withdraw its own run).',
          tags: ['approvals'],
          params: RunIdParams,
          body: VoteBodySchema,
          response: { 200: ApprovalViewSchema, ...errors },
        },
      },
      async (request) => {
        const subject = policy.subjectOf(principalOf(request));
        const body = request.body ?? {};
        const input = {
          ...(body.comment === undefined ? {} : { comment: body.comment }),
          ...(body.binding_sha256 === undefined ? {} : { binding: body.binding_sha256 }),
        };
        return decision === 'approve'
          ? manager.approvals.approve(request.params.id, subject, input)
          : manager.approvals.reject(request.params.id, subject, input);
      },
    );
  }

  app.post(
    '/v1/tokens',
    {
      config: { minRole: 'admin' },
      schema: {
        summary: 'Create an API token',
        description:
          'Needs admin. Every role must be one the creator holds (TOKEN_RIGHTS_EXCEEDED otherwise), and the token stays bounded by its creator: each decision for it is also made for the creator, so it never has more rights, even after the policy changes.',
        tags: ['tokens'],
        body: TokenBodySchema,
        response: { 201: TokenCreatedSchema, ...errors },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const creator = policy.subjectOf(principal);
      await policy.authorize(creator, { verb: 'admin' }, {});
      const held = rolesOf(policy.current(), creator);
      const stronger = request.body.roles.filter((role) => !held.includes(role));
      if (stronger.length > 0) {
        throw new RuneError(
          'TOKEN_RIGHTS_EXCEEDED',
          `${principal.name} does not hold ${stronger.join(', ')}; a token may carry only roles its creator holds`,
          { source, details: { roles: stronger, held } },
        );
      }
      const bounds = [creator, ...(await tokenBounds(context.store.db, creator))];
      const created = await createToken(context.store, {
        name: request.body.name,
        role: request.body.roles.join(','),
        expires: request.body.expires ?? '90d',
        knownRoles: [...policy.current().roles.keys()],
      });
      await context.store.db
        .insertInto('token_bounds')
        .values({
          token_id: created.id,
          creator: principal.name,
          bounds_json: JSON.stringify(bounds),
        })
        .execute();
      // The token existed unbounded for a moment: cached reads of it go (auth/token-cache.ts).
      tokenCacheOf(context.store.db)?.changed();
      return reply
        .code(201)
        .send({ ...created, bounded_by: bounds.map((bound) => bound.principal) });
    },
  );

  app.post(
    '/v1/policy/check',
    {
      config: { minRole: 'authenticated' },
      schema: {
        summary: 'What the policy decides for the caller',
        description:
          'A dry decision for the calling principal (verb, action, node names): allow or deny and the deciding rule. Nothing runs; not audited.',
        tags: ['policy'],
        body: CheckBodySchema,
        response: { 200: DecisionSchema, ...errors },
      },
    },
    async (request) => {
      const subject = policy.subjectOf(principalOf(request));
      const { verb, action, nodes } = request.body;
      return policy.evaluate(subject, {
        verb,
        ...(action === undefined ? {} : { action, tags: actionTags(context.launcher, action) }),
        ...(nodes === undefined ? {} : { nodes }),
      });
    },
  );

  registerPolicyChecksRoute(app, context);
}
