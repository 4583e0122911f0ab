import type { Route } from '../router';
import { Placeholder } from './placeholder';

export function EventDetailView(_props: { route: Route }) {
  return <Placeholder title="Event" />;
}
