/**
 * Example RPC handlers for the support-ticket workflow. In a real deployment
 * these call your help desk; here they are deterministic stand-ins so the
 * example runs offline.
 */
import { z } from 'zod';
import { defineRpc } from '../../rpc/registry';

export const askCustomer = defineRpc('support.askCustomer', {
  input: z.object({ ticketId: z.string(), customerEmail: z.email(), question: z.string() }),
  output: z.object({ messageId: z.string() }),
  handler: ({ ticketId }) => ({ messageId: `msg-${ticketId}-1` }),
});

export const resolveTicket = defineRpc('support.resolve', {
  input: z.object({ ticketId: z.string(), resolution: z.enum(['answered', 'no-reply']), reply: z.string().nullable() }),
  output: z.object({ ticketId: z.string(), status: z.literal('closed'), resolution: z.string() }),
  handler: ({ ticketId, resolution }) => ({ ticketId, status: 'closed' as const, resolution }),
});
