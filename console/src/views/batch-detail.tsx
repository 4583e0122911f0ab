import type { Route } from '../router';
import { Placeholder } from './placeholder';

export function BatchDetailView(_props: { route: Route }) {
  return <Placeholder title="Batch" />;
}
