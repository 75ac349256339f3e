/**
 * API tokens. A token is `rune_<id>_<secret>`: the `rune_` prefix makes a leaked token easy to
 * recognise (secret scanners, logs), `<id>` (16 hex digits, not secret) finds its row, and
 * `<secret>` is 32 random bytes (256 bits, base64url). The store keeps only the sha256 of the
 * secret — a plain hash is enough for 256 random bits, there is nothing to brute-force — and the
 * check compares hashes with `timingSafeEqual`, hashing a dummy when the id is unknown so that
 * unknown and wrong tokens take the same path.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { RuneError } from '@rune/protocol';
import { parseLongDuration } from '../config/long-duration.js';
import type { RunStore, StoredToken } from '../store/run-store.js';
import { tokenCacheOf } from './token-cache.js';

/**
 * The built-in roles (no `[server] policy`). With a policy file a token carries that policy's
 * roles instead, one or more (stored comma-separated in `api_tokens.role`).
 */
export const TOKEN_ROLES = ['viewer', 'operator', 'admin'] as const;
/** A role. */
export type TokenRole = (typeof TOKEN_ROLES)[number];

/** Token names: what the principal is called in runs and audit records (`token:<name>`). */
export const TOKEN_NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

const TOKEN_PATTERN = /^rune_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const DUMMY_HASH = createHash('sha256').update('rune-dummy-token').digest();

/** The authenticated caller of a request. */
export interface Principal {
  /** `token:<name>`: recorded on runs and audit records. */
  readonly name: string;
  readonly tokenId: string;
  /** The roles as stored: one name, or several comma-separated (policy roles). */
  readonly role: string;
  /** The roles the token carries. */
  readonly roles?: readonly string[];
  /** The policy subjects it is known by (`token:<name>`; a session adds `user:` and `group:`). */
  readonly subjects?: readonly string[];
}

/** A token just created: `token` is shown once and never stored. */
export interface CreatedToken {
  token: string;
  id: string;
  name: string;
  role: string;
  created_at: string;
  expires_at: string | null;
}

/** A token as listed (never the secret). */
export interface TokenListing {
  id: string;
  name: string;
  role: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
  state: 'active' | 'expired' | 'revoked';
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

/** Options of {@link createToken}. */
export interface CreateTokenOptions {
  name: string;
  /** One role or several, comma-separated (`analyst,ci`). */
  role: string;
  /** The roles that exist (default the built-in ones; the policy's roles with a policy file). */
  knownRoles?: readonly string[];
  /** A duration (`90d`) or `never`. */
  expires: string;
  now?: Date;
}

/** Creates a token and stores its hash. Throws INVALID_ARGUMENT for a bad name, role or expiry. */
export async function createToken(
  store: RunStore,
  options: CreateTokenOptions,
): Promise<CreatedToken> {
  if (!TOKEN_NAME_PATTERN.test(options.name)) {
    throw new RuneError(
      'INVALID_ARGUMENT',
      `--name must match ${TOKEN_NAME_PATTERN.source} (it names the principal in runs and audit records)`,
      { details: { name: options.name.slice(0, 80) } },
    );
  }
  const known: readonly string[] = options.knownRoles ?? TOKEN_ROLES;
  const roles = [
    ...new Set(
      options.role
        .split(',')
        .map((part) => part.trim())
        .filter((part) => part !== ''),
    ),
  ];
  const unknown = roles.filter((role) => !known.includes(role));
  if (roles.length === 0 || unknown.length > 0) {
    throw new RuneError(
      'INVALID_ARGUMENT',
      `--role must be one or more (comma-separated) of ${known.join(', ')}`,
      { details: { role: options.role.slice(0, 200), unknown: unknown.slice(0, 20) } },
    );
  }
  const now = options.now ?? new Date();
  let expiresAt: string | null = null;
  if (options.expires !== 'never') {
    const ms = parseLongDuration(options.expires, '--expires');
    expiresAt = new Date(now.getTime() + ms).toISOString();
  }
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const created = {
    id,
    name: options.name,
    role: roles.join(','),
    created_at: now.toISOString(),
    expires_at: expiresAt,
  };
  await store.insertToken({
    ...created,
    secret_sha256: sha256(secret).toString('hex'),
    revoked_at: null,
    last_used_at: null,
  });
  return { ...created, token: `rune_${id}_${secret}` };
}

function tokenState(row: StoredToken, now: Date): TokenListing['state'] {
  if (row.revoked_at !== null) return 'revoked';
  if (row.expires_at !== null && Date.parse(row.expires_at) <= now.getTime()) return 'expired';
  return 'active';
}

/** Every token, without secrets. */
export async function listTokens(store: RunStore, now = new Date()): Promise<TokenListing[]> {
  const rows = await store.listTokens();
  return rows.map((row) => ({
    id: row.id,
    name: row.name,
    role: row.role,
    created_at: row.created_at,
    expires_at: row.expires_at,
    revoked_at: row.revoked_at,
    last_used_at: row.last_used_at,
    state: tokenState(row, now),
  }));
}

/** Revokes the token `name`. Throws NOT_FOUND when there is no such unrevoked token. */
export async function revokeToken(store: RunStore, name: string, now = new Date()): Promise<void> {
  if (!(await store.revokeToken(name, now.toISOString()))) {
    throw new RuneError('NOT_FOUND', `no active token is named ${name.slice(0, 80)}`, {
      details: { name: name.slice(0, 80) },
    });
  }
}

const unauthorized = (
  code: 'AUTH_TOKEN_INVALID' | 'AUTH_TOKEN_EXPIRED' | 'AUTH_TOKEN_REVOKED',
  message: string,
): RuneError => new RuneError(code, message, { source: { component: 'rune-server' } });

/**
 * The principal of a bearer token. Throws AUTH_TOKEN_INVALID (malformed or unknown; also a wrong
 * secret), AUTH_TOKEN_EXPIRED or AUTH_TOKEN_REVOKED.
 */
export async function authenticateToken(
  store: RunStore,
  token: string,
  now = new Date(),
): Promise<Principal> {
  const match = TOKEN_PATTERN.exec(token);
  const id = match?.[1];
  // From memory under the token epoch on the embedded store (token-cache.ts): exact, one stat.
  const cache = tokenCacheOf(store.db);
  const row =
    id === undefined
      ? undefined
      : cache === undefined
        ? await store.getToken(id)
        : await cache.read(`token:${id}`, () => store.getToken(id));
  const presented = sha256(match?.[2] ?? token);
  const expected = row === undefined ? DUMMY_HASH : Buffer.from(row.secret_sha256, 'hex');
  const equal = expected.length === presented.length && timingSafeEqual(expected, presented);
  if (row === undefined || !equal) {
    throw unauthorized('AUTH_TOKEN_INVALID', 'the bearer token is not valid for this server');
  }
  const state = tokenState(row, now);
  if (state === 'revoked') {
    throw unauthorized(
      'AUTH_TOKEN_REVOKED',
      `the token ${row.name} was revoked at ${row.revoked_at}`,
    );
  }
  if (state === 'expired') {
    throw unauthorized('AUTH_TOKEN_EXPIRED', `the token ${row.name} expired at ${row.expires_at}`);
  }
  const roles = row.role
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  return {
    name: `token:${row.name}`,
    tokenId: row.id,
    role: row.role,
    roles,
    subjects: [`token:${row.name}`],
  };
}
