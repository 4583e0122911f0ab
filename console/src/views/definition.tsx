import type { Route } from '../router';
import { Placeholder } from './placeholder';

export function DefinitionView(_props: { route: Route }) {
  return <Placeholder title="Definition" />;
}
