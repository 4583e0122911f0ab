import type { Route } from '../router';
import { Placeholder } from './placeholder';

export function DefinitionsView(_props: { route: Route }) {
  return <Placeholder title="Definitions" />;
}
