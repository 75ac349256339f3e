/**
 * What the signed-in principal may do, in one function. The answers come from the server's policy
 * (`POST /v1/policy/checks`, every action and verb in one request after sign-in, by `loadPermissions` in
 * permissions.ts); until they arrive, or for a server without that route, it falls back to the
 * three fixed roles of the API (viewer reads; operator also dry-runs, runs and cancels; admin
 * everything). The API enforces it either way: hiding a button is for clarity, never the
 * protection.
 */

/** The verbs of the policy. */
export type Verb = 'view' | 'dry-run' | 'run' | 'cancel' | 'approve' | 'admin';

/** The signed-in principal as `GET /v1/session` describes it. */
export interface SessionInfo {
  principal: string;
  role: string;
  csrf_token: string | null;
  expires_at: string | null;
  /** Per-action decisions when the server provides them (the RBAC policy). */
  permissions?: Record<string, Verb[]>;
}

const RANK: Record<string, number> = { viewer: 1, operator: 2, admin: 3 };
const NEEDS: Record<Verb, number> = {
  view: 1,
  'dry-run': 2,
  run: 2,
  cancel: 2,
  approve: 2,
  admin: 3,
};

/** May the principal do `verb` (on `action`, when it names one)? */
export function can(session: SessionInfo | null, verb: Verb, action?: string): boolean {
  if (session === null) return false;
  const granted = action === undefined ? undefined : session.permissions?.[action];
  if (granted !== undefined) return granted.includes(verb);
  return (RANK[session.role] ?? 0) >= NEEDS[verb];
}
