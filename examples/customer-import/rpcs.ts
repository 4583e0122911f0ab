/**
 * Example RPC handlers for the customer-import workflow. In a real deployment
 * these call your CRM; here they are deterministic stand-ins so the example
 * runs offline.
 */
import { z } from 'zod';
import { defineRpc, RpcError } from '../../rpc/registry';

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const COUNTRY = /^[A-Za-z]{2}$/;

/** Customers the CRM already knows by external id: importing them updates instead of creating. */
const EXISTING = new Set(['C-002']);

const customer = z.object({ externalId: z.string(), name: z.string(), email: z.email(), country: z.string().length(2) });

/**
 * Check and normalise one raw row. The input contract accepts any row on
 * purpose: a bad row is a business outcome (InvalidCustomerRow, never
 * retried), not a broken call.
 */
export const validateCustomer = defineRpc('crm.validateCustomer', {
  input: z.object({ rowNumber: z.number().int().positive(), customer: z.record(z.string(), z.unknown()) }),
  output: customer,
  handler: ({ rowNumber, customer: row }) => {
    const text = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
    const externalId = text(row.externalId);
    const invalid = (field: string, problem: string): never => {
      throw new RpcError(`row ${rowNumber}${externalId ? ` (${externalId})` : ''}: ${problem}`, 'InvalidCustomerRow', {
        nonRetryable: true,
        details: { rowNumber, externalId: externalId || null, field, value: row[field] ?? null },
      });
    };
    if (!externalId) invalid('externalId', 'externalId is required');
    const name = text(row.name);
    if (!name) invalid('name', 'name is required');
    const email = text(row.email).toLowerCase();
    if (!EMAIL.test(email)) invalid('email', `email ${JSON.stringify(row.email)} is not an email address`);
    const country = text(row.country);
    if (!COUNTRY.test(country)) invalid('country', `country ${JSON.stringify(row.country)} is not a two-letter ISO code`);
    return { externalId, name, email, country: country.toUpperCase() };
  },
  retry: { maximumAttempts: 3, initialInterval: '200ms', nonRetryableErrorTypes: ['InvalidCustomerRow'] },
});

export const upsertCustomer = defineRpc('crm.upsertCustomer', {
  input: customer.extend({ batchId: z.string() }),
  output: z.object({ customerId: z.string(), created: z.boolean() }),
  handler: ({ externalId }) => ({ customerId: `cus-${externalId.toLowerCase()}`, created: !EXISTING.has(externalId) }),
  retry: { maximumAttempts: 5, initialInterval: '500ms' },
});
