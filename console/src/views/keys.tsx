import type { Route } from '../router';
import { Placeholder } from './placeholder';

export function KeysView(_props: { route: Route }) {
  return <Placeholder title="API keys" />;
}
