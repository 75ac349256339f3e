/**
 * The dashboard's shell: sign-in, navigation and the screens. Screens for approvals and alerts
 * appear when the server has those APIs (probed once after sign-in).
 */
import './styles.css';
import { render, type VNode } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, api, SIGNED_OUT_EVENT, setCsrfToken } from './api.js';
import type { SessionInfo } from './can.js';
import { ErrorBox } from './components.js';
import { loadPermissions } from './permissions.js';
import { href, useRoute } from './router.js';
import { AuditView } from './views/audit.js';
import { CatalogView } from './views/catalog.js';
import { HistoryView } from './views/history.js';
import { AlertsView, ApprovalsView } from './views/inbox.js';
import { RunFormView } from './views/run-form.js';
import { RunView } from './views/run-view.js';

interface SignInMethod {
  id: string;
  label: string;
  url: string | null;
}

interface Features {
  approvals: boolean;
  alerts: boolean;
}

async function probe(path: string): Promise<boolean> {
  try {
    await api(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why single sign-on sent the browser back (`#/?sign_in_error=CODE&reason=...` from the OIDC
 * callback). Only the code and a fixed reason come from the URL; the words are the dashboard's,
 * so a crafted link cannot write on this page.
 */
function ssoNotice(query: URLSearchParams): string | null {
  const code = query.get('sign_in_error');
  if (code === null) return null;
  if (query.get('reason') === 'no_grant')
    return 'Single sign-on recognised you, but the policy of this server grants your account nothing. Ask an administrator to bind your user or one of your groups to a role, then sign in again.';
  return `Single sign-on did not complete (${/^[A-Z_]{1,64}$/.test(code) ? code : 'error'}). Start it again; if it keeps failing, ask an administrator to look at the server log.`;
}

/**
 * The single sign-on link, asking to come back to this page (`return_to`: its path and route; the
 * server takes only a path of its own). A page that only says why sign-in failed is not kept.
 */
function ssoHref(url: string, query: URLSearchParams): string {
  const page = query.has('sign_in_error')
    ? window.location.pathname
    : `${window.location.pathname}${window.location.hash}`;
  return `${url}${url.includes('?') ? '&' : '?'}return_to=${encodeURIComponent(page)}`;
}

function SignIn({
  onSignedIn,
  notice,
  query,
}: {
  onSignedIn: (session: SessionInfo) => void;
  notice: string | null;
  query: URLSearchParams;
}) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [methods, setMethods] = useState<SignInMethod[]>([]);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    api<{ methods: SignInMethod[] }>('/v1/session/methods')
      .then((answer) => setMethods(answer.methods))
      .catch(() => setMethods([]));
  }, []);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const session = await api<SessionInfo>('/v1/session', { json: { token } });
      setToken('');
      onSignedIn(session);
    } catch (caught) {
      setError(caught as ApiError);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <h1>
        <span class="logo" aria-hidden="true">
          R
        </span>{' '}
        RUNE
      </h1>
      <p>Sign in to run curated remediation and diagnostic actions.</p>
      {notice === null ? null : (
        <div class="error" role="alert" id="sign-in-notice">
          {notice}
        </div>
      )}
      <form onSubmit={submit} class="card">
        <label for="token">API token</label>
        <input
          id="token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          required
          value={token}
          onInput={(event) => setToken((event.target as HTMLInputElement).value)}
          aria-describedby="token-help"
        />
        <p id="token-help" class="muted">
          Create one with <code>rune token create</code>. It is exchanged for a session cookie and
          never stored in the browser.
        </p>
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
        <ErrorBox error={error} />
      </form>
      {methods
        .filter((method) => method.url !== null)
        .map((method) => (
          <a key={method.id} class="button sso" href={ssoHref(method.url as string, query)}>
            Sign in with {method.label}
          </a>
        ))}
    </main>
  );
}

function App() {
  const route = useRoute();
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  const [features, setFeatures] = useState<Features>({ approvals: false, alerts: false });
  const [error, setError] = useState<ApiError | null>(null);

  const signedIn = useCallback((info: SessionInfo) => {
    setCsrfToken(info.csrf_token);
    setSession(info);
    void Promise.all([
      probe('/v1/runs?status=awaiting_approval&limit=1'),
      probe('/v1/alerts?limit=1'),
    ]).then(([approvals, alerts]) => setFeatures({ approvals, alerts }));
    // The policy decides which buttons show; until it answers, `can` guesses from the role.
    void api<{ actions: Array<{ name: string }> }>('/v1/actions')
      .then((list) => loadPermissions(list.actions.map((entry) => entry.name)))
      .then((permissions) => {
        if (permissions !== undefined)
          setSession((current) =>
            current?.principal === info.principal ? { ...current, permissions } : current,
          );
      })
      .catch(() => undefined);
  }, []);

  useEffect(() => {
    api<SessionInfo>('/v1/session')
      .then(signedIn)
      .catch((caught: unknown) => {
        if (caught instanceof ApiError && caught.status === 401) setSession(null);
        else {
          setError(caught as ApiError);
          setSession(null);
        }
      });
  }, [signedIn]);

  useEffect(() => {
    // A session that ends while the page is open (expiry, sign-out elsewhere) shows sign-in.
    const onSignedOut = () => {
      setCsrfToken(null);
      setSession(null);
    };
    window.addEventListener(SIGNED_OUT_EVENT, onSignedOut);
    return () => window.removeEventListener(SIGNED_OUT_EVENT, onSignedOut);
  }, []);

  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null) {
    return (
      <>
        <ErrorBox error={error} />
        <SignIn onSignedIn={signedIn} notice={ssoNotice(route.query)} query={route.query} />
      </>
    );
  }

  const signOut = async () => {
    try {
      await api('/v1/session', { method: 'DELETE' });
    } finally {
      setCsrfToken(null);
      setSession(null);
    }
  };

  const [screen = 'actions', ...rest] = route.path;
  const nav: Array<[string, string]> = [
    ['actions', 'Actions'],
    ['history', 'History'],
    ['audit', 'Audit'],
    ...(features.approvals ? ([['approvals', 'Approvals']] as Array<[string, string]>) : []),
    ...(features.alerts ? ([['alerts', 'Alerts']] as Array<[string, string]>) : []),
  ];
  let view: VNode;
  if (screen === 'actions' && rest[0] !== undefined)
    // Keyed by the action: another action's form starts empty (no timeout, targets or problems
    // carried over from the previous one).
    view = <RunFormView key={rest[0]} action={rest[0]} session={session} />;
  else if (screen === 'runs' && rest[0] !== undefined)
    view = <RunView id={rest[0]} session={session} />;
  else if (screen === 'history') view = <HistoryView query={route.query} />;
  else if (screen === 'audit') view = <AuditView query={route.query} />;
  else if (screen === 'approvals') view = <ApprovalsView session={session} />;
  else if (screen === 'alerts') view = <AlertsView />;
  else view = <CatalogView session={session} />;

  return (
    <>
      <button type="button" class="skip" onClick={() => document.getElementById('main')?.focus()}>
        Skip to content
      </button>
      <header class="top">
        <a class="brand" href={href(['actions'])}>
          <span class="logo" aria-hidden="true">
            R
          </span>{' '}
          RUNE
        </a>
        <nav aria-label="Main">
          <ul>
            {nav.map(([id, label]) => (
              <li key={id}>
                <a
                  href={href([id])}
                  aria-current={
                    screen === id || (id === 'history' && screen === 'runs') ? 'page' : undefined
                  }
                >
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span title="Signed in as">{session.principal}</span>{' '}
          <span class="role">{session.role}</span>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {view}
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
