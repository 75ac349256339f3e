/**
 * The policy's answers for the buttons: one `POST /v1/policy/checks` after sign-in asks, for every
 * action the dashboard shows, each verb it has a button for. Kept apart from `can.ts`, which stays
 * free of the DOM.
 */
import { ApiError, api } from './api.js';
import type { Verb } from './can.js';

const ASKED: Verb[] = ['view', 'dry-run', 'run', 'cancel', 'approve'];
/** The server's bound on questions per request (`MAX_POLICY_CHECKS`). */
const BATCH = 1000;

interface Question {
  verb: Verb;
  action: string;
}

/**
 * Asks the server's policy what the caller may do on each of `actions` (on some node: the API
 * decides each request for its nodes). Resolves to the per-action verbs for
 * `SessionInfo.permissions`, or `undefined` when the server has no policy route (the role
 * fallback then stays). One request for up to 200 actions; a larger catalog takes one more
 * request per 200 actions.
 */
export async function loadPermissions(
  actions: string[],
): Promise<Record<string, Verb[]> | undefined> {
  const questions: Question[] = actions.flatMap((action) =>
    ASKED.map((verb) => ({ verb, action })),
  );
  const permissions: Record<string, Verb[]> = Object.fromEntries(
    actions.map((action) => [action, []]),
  );
  try {
    for (let start = 0; start < questions.length; start += BATCH) {
      const checks = questions.slice(start, start + BATCH);
      const answer = await api<{ decisions: Array<{ allowed: boolean }> }>('/v1/policy/checks', {
        json: { checks },
      });
      checks.forEach((question, index) => {
        if (answer.decisions[index]?.allowed === true)
          permissions[question.action]?.push(question.verb);
      });
    }
    return permissions;
  } catch (caught) {
    if (caught instanceof ApiError && caught.status === 404) return undefined;
    throw caught;
  }
}
