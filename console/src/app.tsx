/**
 * The console's shell: log in with a key, then the navigation and the view
 * the URL fragment names (router.ts). Every view is a client of the HTTP API.
 */
import { useEffect, useState, type ReactNode } from 'react';
import { api, ApiError, storedKey, storeKey, useCan, WhoContext } from './api';
import type { Scope, WhoAmI } from './api-types';
import { Loading } from './components/common';
import { href, navigate, useRoute, type Route } from './router';
import { AttentionView } from './views/attention';
import { AuditView } from './views/audit';
import { BatchDetailView } from './views/batch-detail';
import { BatchesView } from './views/batches';
import { DefinitionView } from './views/definition';
import { DefinitionsView } from './views/definitions';
import { DeployCheckView } from './views/deploy-check';
import { DiffView } from './views/diff';
import { EventDetailView } from './views/event-detail';
import { EventsView } from './views/events';
import { KeysView } from './views/keys';
import { LoginView } from './views/login';
import { RunDetailView } from './views/run-detail';
import { RunsView } from './views/runs';
import { StallsView } from './views/stalls';

interface NavItem {
  label: string;
  path: string;
  scope: Scope;
}

const NAV: NavItem[] = [
  { label: 'Runs', path: 'runs', scope: 'read' },
  { label: 'Stalls', path: 'stalls', scope: 'read' },
  { label: 'Attention', path: 'attention', scope: 'read' },
  { label: 'Definitions', path: 'definitions', scope: 'read' },
  { label: 'Events', path: 'events', scope: 'read' },
  { label: 'Deploy check', path: 'deploy-check', scope: 'read' },
  { label: 'Batches', path: 'batches', scope: 'read' },
  { label: 'Audit', path: 'audit', scope: 'admin' },
  { label: 'Keys', path: 'keys', scope: 'admin' },
];

/** The view for a route. */
function view(route: Route): ReactNode {
  const [first, second, third] = route.parts;
  switch (first) {
    case 'runs':
      return second ? <RunDetailView route={route} /> : <RunsView route={route} />;
    case 'stalls':
      return <StallsView route={route} />;
    case 'attention':
      return <AttentionView route={route} />;
    case 'definitions':
      if (second && third === 'diff') return <DiffView route={route} />;
      return second ? <DefinitionView route={route} /> : <DefinitionsView route={route} />;
    case 'events':
      return second ? <EventDetailView route={route} /> : <EventsView route={route} />;
    case 'deploy-check':
      return <DeployCheckView route={route} />;
    case 'batches':
      return second ? <BatchDetailView route={route} /> : <BatchesView route={route} />;
    case 'audit':
      return <AuditView route={route} />;
    case 'keys':
      return <KeysView route={route} />;
    default:
      return (
        <div className="page">
          <h1>Not found</h1>
          <p>
            The console has no page <code>{route.path}</code>. <a href={href(['runs'])}>Go to the runs.</a>
          </p>
        </div>
      );
  }
}

function NavLink({ item, current }: { item: NavItem; current: string | undefined }) {
  const allowed = useCan(item.scope);
  if (!allowed) return null;
  return (
    <a href={href([item.path])} className={current === item.path ? 'active' : undefined} aria-current={current === item.path ? 'page' : undefined}>
      {item.label}
    </a>
  );
}

export function App() {
  const route = useRoute();
  const [who, setWho] = useState<WhoAmI | undefined>();
  const [checking, setChecking] = useState(true);
  const [loginError, setLoginError] = useState<ApiError | undefined>();

  // `#/login?key=…` (the link `npm start` prints) logs in with that key and takes it out of the URL.
  useEffect(() => {
    const fromLink = route.parts[0] === 'login' ? route.query.get('key') : null;
    if (fromLink) {
      storeKey(fromLink);
      navigate('#/runs', { replace: true });
    }
    const key = storedKey();
    if (!key) {
      setChecking(false);
      return;
    }
    api<WhoAmI>('/whoami').then(
      (w) => {
        setWho(w);
        setChecking(false);
      },
      (err: unknown) => {
        if (err instanceof ApiError && err.status === 401) storeKey(null);
        setLoginError(err instanceof ApiError ? err : new ApiError(0, 'CONSOLE', String(err)));
        setChecking(false);
      },
    );
    // Once, at load; logging in later goes through LoginView.
  }, []);

  if (checking) return <Loading what="the console" />;
  if (!who) return <LoginView onLogin={setWho} initialError={loginError} />;
  if (route.path === '/' || route.parts[0] === 'login') {
    navigate('#/runs', { replace: true });
    return null;
  }
  return (
    <WhoContext.Provider value={who}>
      <div className="shell">
        <nav className="nav" aria-label="Main">
          <a className="brand" href={href(['runs'])}>
            pinflow
          </a>
          {NAV.map((item) => (
            <NavLink key={item.path} item={item} current={route.parts[0]} />
          ))}
          <span className="who" data-testid="who">
            {who.name} · {who.scopes.join(', ')}
            {who.tenant ? ` · tenant ${who.tenant}` : ''}
          </span>
          <button
            type="button"
            onClick={() => {
              storeKey(null);
              setWho(undefined);
              navigate('#/login');
            }}
          >
            Log out
          </button>
        </nav>
        <main>{view(route)}</main>
      </div>
    </WhoContext.Provider>
  );
}

