import type { Route } from '../router';
import { Placeholder } from './placeholder';

export function DiffView(_props: { route: Route }) {
  return <Placeholder title="Version diff" />;
}
