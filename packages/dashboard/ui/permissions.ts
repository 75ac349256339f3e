/**
 * The policy's answers for the buttons: `POST /v1/policy/check` for each action and verb the
 * dashboard shows, once after sign-in. Kept apart from `can.ts`, which stays free of the DOM.
 */
import { ApiError, api } from './api.js';
import type { Verb } from './can.js';

const ASKED: Verb[] = ['view', 'dry-run', 'run', 'cancel', 'approve'];

/**
 * Asks the server's policy what the caller may do on each of `actions` (on some node: the API
 * decides each request for its nodes). Resolves to the per-action verbs for
 * `SessionInfo.permissions`, or `undefined` when the server has no policy route (the role
 * fallback then stays).
 */
export async function loadPermissions(
  actions: string[],
): Promise<Record<string, Verb[]> | undefined> {
  try {
    const entries = await Promise.all(
      actions.map(async (action) => {
        const answers = await Promise.all(
          ASKED.map((verb) =>
            api<{ allowed: boolean }>('/v1/policy/check', { json: { verb, action } }).then(
              (decision) => (decision.allowed ? [verb] : []),
            ),
          ),
        );
        return [action, answers.flat()] as const;
      }),
    );
    return Object.fromEntries(entries);
  } catch (caught) {
    if (caught instanceof ApiError && caught.status === 404) return undefined;
    throw caught;
  }
}
