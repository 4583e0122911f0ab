import type { Route } from '../router';
import { Placeholder } from './placeholder';

export function BatchesView(_props: { route: Route }) {
  return <Placeholder title="Batches" />;
}
