/** Events: what each event status means, and the form that submits an event (POST /events). */
import { useState, type FormEvent } from 'react';
import { api } from '../api';
import type { EventDetail } from '../api-types';
import { ErrorBox } from './common';
import { formText, parseJsonInput, useWriteError } from './ops-parts';
import { href } from '../router';

/** Why an event has its status, in words (the API's error, when it gives one, is shown next to it). */
export const EVENT_STATUS_MEANING: Record<string, string> = {
  RECEIVED: 'received; being routed to the runs that wait on its key',
  ROUTED: 'delivered to at least one waiting run',
  UNMATCHED: 'no run waited on its name and correlation key when it arrived, and it had no time to live to stay buffered',
  BUFFERED: 'no run waits on its key yet; it stays buffered until its time to live runs out, for the first wait that opens on the key',
  EXPIRED: 'it stayed buffered for its whole time to live and no wait on its key opened',
  FAILED: 'a delivery to a waiting run failed; it is retried with backoff',
  REJECTED: 'refused when it arrived (see the error)',
};

type Submitted = EventDetail & { runIds: string[]; duplicate: boolean };

/** Send an event as the HTTP door does; the result says where it went. */
export function SendEventForm({ defaultTenant }: { defaultTenant?: string | undefined }) {
  const [error, setError, clearError] = useWriteError();
  const [sent, setSent] = useState<Submitted | null>(null);
  const [busy, setBusy] = useState(false);
  const [payloadProblem, setPayloadProblem] = useState<string | null>(null);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    clearError();
    setSent(null);
    const data = new FormData(e.currentTarget);
    const field = (n: string) => formText(data, n);
    const payload = parseJsonInput(field('payload'));
    if (!payload.ok) {
      setPayloadProblem(`payload: ${payload.message}`);
      return;
    }
    setPayloadProblem(null);
    setBusy(true);
    try {
      const body = {
        name: field('name'),
        ...(field('tenant') ? { tenant: field('tenant') } : {}),
        ...(field('correlationKey') ? { correlationKey: field('correlationKey') } : {}),
        ...(field('eventId') ? { eventId: field('eventId') } : {}),
        ...(field('ttl') ? { ttl: /^\d+$/.test(field('ttl')) ? Number(field('ttl')) : field('ttl') } : {}),
        ...(payload.value !== undefined ? { payload: payload.value } : {}),
      };
      setSent(await api<Submitted>('/events', { method: 'POST', body }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <details className="card" data-testid="send-event">
      <summary>
        <strong>Send an event</strong> <span className="muted">(as POST /events: it is routed to the runs waiting on its key)</span>
      </summary>
      <form className="form-grid" onSubmit={(e) => void submit(e)}>
        <label htmlFor="ev-name">Name</label>
        <input id="ev-name" name="name" required placeholder="payment.received" />
        <label htmlFor="ev-key">Correlation key</label>
        <input id="ev-key" name="correlationKey" placeholder="order-42 (or let the event's rule find it in the payload)" />
        <label htmlFor="ev-payload">Payload (JSON)</label>
        <textarea id="ev-payload" name="payload" rows={4} placeholder='{"orderId": "order-42"}' />
        <label htmlFor="ev-tenant">Tenant</label>
        <input id="ev-tenant" name="tenant" defaultValue={defaultTenant ?? ''} placeholder="default" />
        <label htmlFor="ev-id">Event id</label>
        <input id="ev-id" name="eventId" placeholder="optional: makes a resend a duplicate, not a second event" />
        <label htmlFor="ev-ttl">Time to live</label>
        <input id="ev-ttl" name="ttl" placeholder="optional: 30s, 5m, 2h, 1d or ms" />
        <span />
        <span>
          <button type="submit" className="primary" disabled={busy}>
            Send
          </button>
        </span>
      </form>
      {payloadProblem && <p className="bad">{payloadProblem}</p>}
      <ErrorBox error={error} title="The event was refused" />
      {sent && (
        <p data-testid="sent-event">
          {sent.duplicate ? 'A duplicate of ' : 'Sent: '}
          <a href={href(['events', sent.eventId], { tenant: sent.tenant })}>{sent.eventId}</a> is <strong>{sent.status}</strong>
          {sent.runIds.length > 0 ? ` (to ${sent.runIds.join(', ')})` : ` — ${EVENT_STATUS_MEANING[sent.status] ?? ''}`}.
        </p>
      )}
    </details>
  );
}
