/**
 * `POST /v1/policy/checks`: many dry decisions for the caller in one request. The dashboard asks
 * what the signed-in person may do on every action of the catalog at sign-in (five verbs per
 * action); one request per question would cost hundreds of requests and run into the rate limit
 * with a catalog of a hundred actions. The batch is bounded ({@link MAX_POLICY_CHECKS}) so one
 * request cannot make the server decide without end.
 */
import { RuneError } from '@rune/protocol';
import { Type } from '@sinclair/typebox';
import { errorResponses } from '../http/api-schemas.js';
import type { ApiInstance, RouteContext } from '../http/route-context.js';
import type { PolicyDecision } from './policy.js';
import { POLICY_VERBS } from './policy-schema.js';
import { actionTags } from './route-guard.js';

const source = { component: 'rune-server' } as const;

/** The most questions one `POST /v1/policy/checks` may ask (INVALID_ARGUMENT beyond). */
export const MAX_POLICY_CHECKS = 1000;

const closed = <T extends Parameters<typeof Type.Object>[0]>(properties: T, description?: string) =>
  Type.Object(properties, {
    additionalProperties: false,
    ...(description === undefined ? {} : { description }),
  });

const QuestionSchema = closed(
  {
    verb: Type.Union(POLICY_VERBS.map((verb) => Type.Literal(verb))),
    action: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    nodes: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { maxItems: 1000 }),
    ),
  },
  'One question, as the body of POST /v1/policy/check.',
);

const ChecksBodySchema = closed(
  {
    checks: Type.Array(QuestionSchema, {
      minItems: 1,
      maxItems: MAX_POLICY_CHECKS,
      description: `At most ${MAX_POLICY_CHECKS} questions; split a larger set into several requests.`,
    }),
  },
  'Several dry decisions for the calling principal.',
);

const AnswerSchema = closed({
  verb: Type.String(),
  action: Type.Union([Type.String(), Type.Null()]),
  allowed: Type.Boolean(),
  rule: Type.String(),
  reason: Type.String(),
  quorum: Type.Integer(),
  offending_nodes: Type.Array(Type.String()),
});

const ChecksResponseSchema = closed(
  {
    decisions: Type.Array(AnswerSchema, { description: 'One per question, in the same order.' }),
  },
  'The decisions, in the order of the questions.',
);

/** Registers `POST /v1/policy/checks`. */
export function registerPolicyChecksRoute(app: ApiInstance, context: RouteContext): void {
  const { policy } = context;
  app.post(
    '/v1/policy/checks',
    {
      config: { minRole: 'authenticated' },
      schema: {
        summary: 'What the policy decides for the caller, for many questions at once',
        description: `Up to ${MAX_POLICY_CHECKS} dry decisions (verb, action, node names) for the calling principal in one request, answered in order: allow or deny and the deciding rule. More questions are refused whole with INVALID_ARGUMENT. Nothing runs; not audited. The dashboard asks this once after sign-in.`,
        tags: ['policy'],
        body: ChecksBodySchema,
        response: {
          200: ChecksResponseSchema,
          ...errorResponses(400, 401, 403, 413, 415, 429, 500),
        },
      },
    },
    async (request) => {
      const principal = request.principal;
      if (principal === undefined) {
        throw new RuneError('AUTH_TOKEN_MISSING', 'this endpoint needs a bearer token', { source });
      }
      const subject = policy.subjectOf(principal);
      const tags = new Map<string, string[]>();
      const tagsOf = (action: string): string[] => {
        let found = tags.get(action);
        if (found === undefined) {
          found = actionTags(context.launcher, action);
          tags.set(action, found);
        }
        return found;
      };
      const decisions: PolicyDecision[] = [];
      // One after the other: each decision may read the token's bounds from the store, and a
      // thousand concurrent reads would only queue on the one connection.
      for (const { verb, action, nodes } of request.body.checks) {
        decisions.push(
          await policy.evaluate(subject, {
            verb,
            ...(action === undefined ? {} : { action, tags: tagsOf(action) }),
            ...(nodes === undefined ? {} : { nodes }),
          }),
        );
      }
      return {
        decisions: decisions.map((decision, index) => {
          const question = request.body.checks[index];
          return {
            verb: question?.verb ?? '',
            action: question?.action ?? null,
            allowed: decision.allowed,
            rule: decision.rule,
            reason: decision.reason,
            quorum: decision.quorum,
            offending_nodes: decision.offending.map((entry) => entry.node).slice(0, 100),
          };
        }),
      };
    },
  );
}
