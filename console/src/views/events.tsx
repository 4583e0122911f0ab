import type { Route } from '../router';
import { Placeholder } from './placeholder';

export function EventsView(_props: { route: Route }) {
  return <Placeholder title="Events" />;
}
