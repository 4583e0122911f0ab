/**
 * Example RPC handlers for the order-fulfilment workflow. In a real
 * deployment these call your order, inventory, payment, shipping and
 * notification services; here they are deterministic stand-ins so the example
 * runs offline.
 */
import { z } from 'zod';
import { defineRpc, RpcError } from '../../rpc/registry';

const item = z.object({ sku: z.string().min(1), quantity: z.number().int().positive(), unitPrice: z.number().nonnegative() });
const address = z.object({ line1: z.string(), city: z.string(), postcode: z.string(), country: z.string().length(2) });

export const validateOrder = defineRpc('orders.validate', {
  input: z.object({ orderId: z.string(), customerId: z.string(), items: z.array(item) }),
  output: z.object({ valid: z.boolean(), reason: z.string().optional() }),
  handler: ({ items }) => {
    if (items.length === 0) return { valid: false, reason: 'the order has no items' };
    const blocked = items.find((i) => i.sku.startsWith('BLOCKED'));
    return blocked ? { valid: false, reason: `SKU ${blocked.sku} cannot be sold` } : { valid: true };
  },
});

export const reserveInventory = defineRpc('inventory.reserve', {
  input: z.object({ orderId: z.string(), items: z.array(z.object({ sku: z.string(), quantity: z.number().int().positive() })) }),
  output: z.object({ reservationId: z.string(), expiresAt: z.string() }),
  handler: ({ orderId }) => ({ reservationId: `res-${orderId}`, expiresAt: new Date(Date.now() + 15 * 60_000).toISOString() }),
  retry: { maximumAttempts: 5, initialInterval: '500ms' },
});

export const chargePayment = defineRpc('payments.charge', {
  input: z.object({ orderId: z.string(), customerId: z.string(), amount: z.number().positive(), currency: z.string().length(3) }),
  output: z.object({ chargeId: z.string(), status: z.enum(['captured', 'pending']) }),
  handler: ({ orderId, amount }) => {
    if (amount > 10_000) throw new RpcError(`amount ${amount} exceeds the card limit`, 'CardDeclined', { nonRetryable: true });
    return { chargeId: `ch-${orderId}`, status: 'captured' as const };
  },
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['CardDeclined'] },
  timeout: '20s',
});

export const createShipment = defineRpc('shipping.createShipment', {
  input: z.object({ orderId: z.string(), reservationId: z.string(), address, express: z.boolean() }),
  output: z.object({ trackingNumber: z.string(), carrier: z.string() }),
  handler: ({ orderId, express }) => ({ trackingNumber: `TRK-${orderId.toUpperCase()}`, carrier: express ? 'ExpressCo' : 'PostalCo' }),
});

export const sendNotification = defineRpc('notifications.send', {
  input: z.object({ to: z.email(), template: z.string(), data: z.record(z.string(), z.unknown()) }),
  output: z.object({ messageId: z.string() }),
  handler: ({ template }, ctx) => ({ messageId: `msg-${template}-${ctx.idempotencyKey}` }),
});
