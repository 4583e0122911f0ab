import type { Route } from '../router';
import { Placeholder } from './placeholder';

export function RunsView(_props: { route: Route }) {
  return <Placeholder title="Runs" />;
}
