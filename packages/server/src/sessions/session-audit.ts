/**
 * Audit records of the dashboard's sessions (`event: "session"`): every sign-in (API token or
 * OIDC), every OIDC sign-in the policy refuses, every sign-out and every expiry (idle, absolute
 * lifetime, the token revoked or expired). A record names who, how, when, from which address and
 * the session by the sha256 of its secret — the key the store already keeps — never the secret or
 * the token.
 *
 * A session ends once: `session_ends` (migration 0011_session_audit) holds one row per ended
 * session, and only the request, instance or pruning pass that inserts it writes the record.
 */
import type { AuditEntry } from '@rune/core';
import type { Kysely } from 'kysely';
import type { Principal } from '../auth/tokens.js';
import type { ServerLauncher } from '../runs/launcher.js';
import type { BrowserSessionsTable, StoreDatabase } from '../store/schema.js';

/** How a session was opened. */
export type SignInMethod = 'token' | 'oidc';

/** Why a session ended. */
export type SessionEndReason =
  | 'signed_out'
  | 'idle'
  | 'lifetime'
  | 'token_revoked'
  | 'token_expired';

/** Where session records go: the launcher's audit facade (the one chain of the server). */
export type SessionAuditSink = Pick<ServerLauncher, 'recordAudit'>;

/** A session row as far as its audit record needs it. */
export type SessionRowFacts = Pick<
  BrowserSessionsTable,
  'id_sha256' | 'principal' | 'token_id' | 'created_at' | 'expires_at'
>;

const NO_TRACE = '0'.repeat(32);

function entry(
  operator: string,
  status: string,
  metadata: Record<string, unknown>,
  error?: { code: string; message: string },
  durationMs?: number,
): AuditEntry {
  return {
    event: 'session',
    operator: operator.slice(0, 300),
    action: '',
    plugin: null,
    node: null,
    transport: null,
    status,
    error_code: error?.code ?? null,
    error_message: error?.message.slice(0, 500) ?? null,
    duration_ms: durationMs ?? null,
    trace_id: NO_TRACE,
    params: null,
    metadata,
  };
}

/** How a stored session was opened: a token session keeps its token's id. */
const methodOf = (row: Pick<BrowserSessionsTable, 'token_id'>): SignInMethod =>
  row.token_id === null ? 'oidc' : 'token';

/** Facts of a sign-in, for {@link auditSignIn}. */
export interface SignInFacts {
  principal: Principal;
  method: SignInMethod;
  sessionSha256: string;
  expiresAt: string;
  idleMs: number;
  remoteAddress: string;
}

/** Records a sign-in. */
export function auditSignIn(sink: SessionAuditSink, facts: SignInFacts): Promise<void> {
  const { principal } = facts;
  return sink.recordAudit(
    entry(principal.name, 'signed_in', {
      method: facts.method,
      session_sha256: facts.sessionSha256,
      ...(facts.method === 'token' ? { token_id: principal.tokenId } : {}),
      roles: principal.role,
      ...(principal.subjects === undefined ? {} : { subjects: principal.subjects.slice(0, 50) }),
      expires_at: facts.expiresAt,
      idle_timeout_s: Math.floor(facts.idleMs / 1000),
      remote_address: facts.remoteAddress,
    }),
    { principal: principal.name, source: 'api' },
  );
}

/** Records a sign-in the server refused after the user proved who they are (OIDC). */
export function auditSignInRefused(
  sink: SessionAuditSink,
  facts: {
    principal: Principal;
    method: SignInMethod;
    code: string;
    message: string;
    remoteAddress: string;
  },
): Promise<void> {
  return sink.recordAudit(
    entry(
      facts.principal.name,
      'refused',
      {
        method: facts.method,
        ...(facts.principal.subjects === undefined
          ? {}
          : { subjects: facts.principal.subjects.slice(0, 50) }),
        remote_address: facts.remoteAddress,
      },
      { code: facts.code, message: facts.message },
    ),
    { principal: facts.principal.name, source: 'api' },
  );
}

/**
 * Marks a session ended and, if this call was the first to see it end, records it. Resolves to
 * whether it recorded.
 */
export async function endSession(
  db: Kysely<StoreDatabase>,
  sink: SessionAuditSink | undefined,
  row: SessionRowFacts,
  reason: SessionEndReason,
  now = new Date(),
): Promise<boolean> {
  const inserted = await db
    .insertInto('session_ends')
    .values({ id_sha256: row.id_sha256, reason, ended_at: now.toISOString() })
    .onConflict((conflict) => conflict.column('id_sha256').doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0 || sink === undefined) return false;
  await sink.recordAudit(
    entry(
      row.principal,
      reason === 'signed_out' ? 'signed_out' : 'expired',
      {
        method: methodOf(row),
        session_sha256: row.id_sha256,
        reason,
        ...(row.token_id === null ? {} : { token_id: row.token_id }),
        signed_in_at: row.created_at,
      },
      undefined,
      Math.max(0, now.getTime() - Date.parse(row.created_at)),
    ),
    { principal: row.principal, source: 'api' },
  );
  return true;
}

/** Deletes the end marks of sessions no longer stored (pruned): nothing can present them again. */
export async function pruneSessionEnds(db: Kysely<StoreDatabase>): Promise<void> {
  await db
    .deleteFrom('session_ends')
    .where('id_sha256', 'not in', db.selectFrom('browser_sessions').select('id_sha256'))
    .execute();
}
