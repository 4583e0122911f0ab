import type { Route } from '../router';
import { Placeholder } from './placeholder';

export function AuditView(_props: { route: Route }) {
  return <Placeholder title="Audit log" />;
}
