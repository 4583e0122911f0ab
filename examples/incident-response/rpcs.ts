/**
 * Example RPC handlers for the incident-response and incident-postmortem
 * workflows. In a real deployment these call your monitoring, paging, chat
 * and docs tools; here they are deterministic stand-ins (every timestamp is
 * derived from the incident's own `detectedAt`) so the examples run offline.
 */
import { z } from 'zod';
import { defineRpc, RpcError } from '../../rpc/registry';

const severity = z.enum(['SEV1', 'SEV2', 'SEV3']);
const isoTimestamp = z.iso.datetime();

/** Which team owns which service; anything else lands with the platform team. */
const OWNERS: Record<string, string> = {
  'checkout-api': 'payments',
  'search-api': 'discovery',
  'legacy-reports': 'data',
};

/** The current on-call of each team's rotation. Teams missing here have no pager set up. */
const ON_CALL: Record<string, string> = {
  payments: 'ravi@example.com',
  discovery: 'sam@example.com',
  platform: 'noor@example.com',
};

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

export const classifyIncident = defineRpc('incidents.classify', {
  input: z.object({ incidentId: z.string(), service: z.string(), errorRate: z.number().min(0).max(1), customerImpact: z.boolean() }),
  output: z.object({ severity, team: z.string(), runbook: z.url() }),
  handler: ({ service, errorRate, customerImpact }) => {
    const sev: z.infer<typeof severity> = customerImpact && errorRate >= 0.1 ? 'SEV1' : customerImpact || errorRate >= 0.05 ? 'SEV2' : 'SEV3';
    return { severity: sev, team: OWNERS[service] ?? 'platform', runbook: `https://runbooks.example.com/${service}` };
  },
});

export const pageOnCall = defineRpc('incidents.pageOnCall', {
  input: z.object({ incidentId: z.string(), team: z.string(), severity, title: z.string() }),
  output: z.object({ pageId: z.string(), responder: z.email() }),
  handler: ({ incidentId, team }) => {
    const responder = ON_CALL[team];
    if (!responder) {
      throw new RpcError(`team ${team} has no on-call rotation`, 'NoOnCallRotation', { nonRetryable: true, details: { team } });
    }
    return { pageId: `page-${incidentId}-${team}`, responder };
  },
  retry: { maximumAttempts: 3, initialInterval: '200ms', nonRetryableErrorTypes: ['NoOnCallRotation'] },
});

export const notifyChannel = defineRpc('incidents.notifyChannel', {
  input: z.object({ channel: z.string().startsWith('#'), incidentId: z.string(), text: z.string().min(1) }),
  output: z.object({ channel: z.string(), messageId: z.string() }),
  handler: ({ channel, incidentId }) => ({ channel, messageId: `msg-${incidentId}-${channel.slice(1)}` }),
});

export const collectTimeline = defineRpc('incidents.collectTimeline', {
  input: z.object({ incidentId: z.string(), service: z.string(), detectedAt: isoTimestamp }),
  output: z.object({ firstAlertAt: isoTimestamp, events: z.array(z.object({ at: isoTimestamp, event: z.string() })) }),
  handler: ({ service, detectedAt }) => {
    const detected = Date.parse(detectedAt);
    const at = (offsetMs: number) => new Date(detected + offsetMs).toISOString();
    return {
      firstAlertAt: at(-3 * MINUTE),
      events: [
        { at: at(-7 * MINUTE), event: `deploy of ${service} finished` },
        { at: at(-3 * MINUTE), event: `alert fired for ${service}` },
        { at: at(0), event: 'incident declared' },
      ],
    };
  },
});

export const scheduleReview = defineRpc('incidents.scheduleReview', {
  input: z.object({ incidentId: z.string(), team: z.string(), severity, detectedAt: isoTimestamp }),
  output: z.object({ meetingId: z.string(), scheduledFor: isoTimestamp }),
  handler: ({ incidentId, detectedAt }) => {
    // Two days after detection, at 15:00 UTC.
    const day = new Date(Date.parse(detectedAt) + 2 * DAY);
    day.setUTCHours(15, 0, 0, 0);
    return { meetingId: `review-${incidentId}`, scheduledFor: day.toISOString() };
  },
});

export const createPostmortemDoc = defineRpc('incidents.createPostmortemDoc', {
  input: z.object({
    incidentId: z.string(),
    title: z.string(),
    severity,
    team: z.string(),
    responder: z.email().nullable(),
    timelineEvents: z.number().int().min(0),
    reviewMeetingId: z.string().nullable(),
  }),
  output: z.object({ docId: z.string(), url: z.url() }),
  handler: ({ incidentId }) => {
    const docId = `pm-${incidentId.toLowerCase()}`;
    return { docId, url: `https://docs.example.com/postmortems/${docId}` };
  },
});
