import type { Route } from '../router';
import { Placeholder } from './placeholder';

export function DeployCheckView(_props: { route: Route }) {
  return <Placeholder title="Deploy check" />;
}
