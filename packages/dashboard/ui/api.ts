/**
 * The dashboard's one door to the API. Credentials: the HttpOnly session cookie (the browser
 * sends it; no script can read it) and the session's CSRF token, which lives only in memory and
 * goes in `x-csrf-token` on every state-changing request. Nothing is kept in local storage.
 */

/** An EPS error as the API sends it. */
export interface EpsError {
  code: string;
  category?: string;
  message: string;
  hint?: string;
  details?: Record<string, unknown>;
  trace_id?: string;
}

/** A refused request: the HTTP status and the EPS error of the body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly eps: EpsError,
  ) {
    super(eps.message);
  }
}

/** Dispatched on `window` when the API answers 401. */
export const SIGNED_OUT_EVENT = 'rune-signed-out';

let csrfToken: string | null = null;

/** Remembers the session's CSRF token (after sign-in or `GET /v1/session`). */
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

const SAFE = new Set(['GET', 'HEAD']);

/** A JSON request to the API; throws {@link ApiError} for any non-2xx answer. */
export async function api<T>(
  path: string,
  init: { method?: string; json?: unknown; signal?: AbortSignal } = {},
): Promise<T> {
  const method = init.method ?? (init.json === undefined ? 'GET' : 'POST');
  const headers: Record<string, string> = { accept: 'application/json' };
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  if (!SAFE.has(method) && csrfToken !== null) headers['x-csrf-token'] = csrfToken;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
      ...(init.signal === undefined ? {} : { signal: init.signal }),
    });
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error;
    throw new ApiError(0, { code: 'CONNECTION_LOST', message: 'the server cannot be reached' });
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const eps = (body as { error?: EpsError } | undefined)?.error ?? {
      code: 'INTERNAL_ERROR',
      message: `HTTP ${response.status}`,
    };
    // The session ended (idle, lifetime, sign-out elsewhere, token revoked): the shell shows
    // sign-in instead of an error on every screen.
    if (response.status === 401) window.dispatchEvent(new CustomEvent(SIGNED_OUT_EVENT));
    throw new ApiError(response.status, eps);
  }
  return body as T;
}

/** A query string of the non-empty members of `values`. */
export function query(values: Record<string, string | number | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}
