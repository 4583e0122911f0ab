import { Empty, Page } from '../components/common';

/** A view still being built. */
export function Placeholder({ title }: { title: string }) {
  return (
    <Page title={title}>
      <Empty>This view is not built yet.</Empty>
    </Page>
  );
}
