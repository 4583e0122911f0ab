import type { Route } from '../router';
import { Placeholder } from './placeholder';

export function RunDetailView(_props: { route: Route }) {
  return <Placeholder title="Run" />;
}
