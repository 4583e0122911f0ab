import type { Route } from '../router';
import { Placeholder } from './placeholder';

export function StallsView(_props: { route: Route }) {
  return <Placeholder title="Stalls" />;
}
