import type { Route } from '../router';
import { Placeholder } from './placeholder';

export function AttentionView(_props: { route: Route }) {
  return <Placeholder title="Attention" />;
}
