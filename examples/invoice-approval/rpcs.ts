/**
 * Example RPC handlers for the invoice-approval workflow. In a real deployment
 * these call your ERP, fraud screening and approval tooling; here they are
 * deterministic stand-ins (fixed tables, no clock, no randomness) so the
 * example runs offline and its outcome is predictable.
 */
import { z } from 'zod';
import { defineRpc, RpcError } from '../../rpc/registry';

const role = z.enum(['manager', 'director']);
const approvalRequest = z.object({ requestId: z.string(), approver: z.email(), role, escalated: z.boolean() });

/** Vendor credit lines: limit and what is already owed. Unknown vendors get the default line. */
const CREDIT_LINES: Record<string, { creditLimit: number; openBalance: number }> = {
  'ven-17': { creditLimit: 50_000, openBalance: 12_500 },
  'ven-23': { creditLimit: 20_000, openBalance: 19_000 },
};
const DEFAULT_CREDIT_LINE = { creditLimit: 10_000, openBalance: 0 };

/** Yearly budget and spend so far per cost center. */
const BUDGETS: Record<string, { budget: number; spent: number }> = {
  'CC-ENG': { budget: 120_000, spent: 86_000 },
  'CC-OPS': { budget: 60_000, spent: 58_500 },
  'CC-MKT': { budget: 40_000, spent: 10_000 },
};

/** Approvers per cost center; an approver who is away cannot take requests. */
const APPROVERS: Record<string, Record<'manager' | 'director', { email: string; away?: boolean }>> = {
  'CC-ENG': { manager: { email: 'lin.eng-manager@example.com', away: true }, director: { email: 'dana.director@example.com' } },
  'CC-OPS': { manager: { email: 'omar.ops-manager@example.com' }, director: { email: 'dana.director@example.com' } },
  'CC-MKT': { manager: { email: 'mia.marketing-manager@example.com' }, director: { email: 'ruth.cmo@example.com' } },
};

/** What each role may approve on its own. */
const APPROVAL_LIMITS = { manager: 10_000, director: 100_000 } as const;

function approverFor(costCenter: string, r: 'manager' | 'director') {
  const a = APPROVERS[costCenter]?.[r];
  if (!a) throw new RpcError(`cost center ${costCenter} has no ${r}`, 'NoApprover', { nonRetryable: true, details: { costCenter, role: r } });
  return a;
}

export const checkVendorCredit = defineRpc('invoices.checkVendorCredit', {
  input: z.object({ vendorId: z.string().min(1), amount: z.number().positive(), currency: z.string().length(3) }),
  output: z.object({ vendorId: z.string(), creditLimit: z.number(), openBalance: z.number(), available: z.number() }),
  handler: ({ vendorId, amount }) => {
    if (vendorId.startsWith('blocked-')) {
      throw new RpcError(`vendor ${vendorId} is blocked for payments`, 'VendorBlocked', { nonRetryable: true, details: { vendorId } });
    }
    const line = CREDIT_LINES[vendorId] ?? DEFAULT_CREDIT_LINE;
    const available = line.creditLimit - line.openBalance;
    if (amount > available) {
      throw new RpcError(`invoice of ${amount} exceeds the available credit of ${available} for vendor ${vendorId}`, 'CreditLimitExceeded', {
        nonRetryable: true,
        details: { vendorId, available },
      });
    }
    return { vendorId, ...line, available };
  },
  retry: { maximumAttempts: 3, initialInterval: '200ms', nonRetryableErrorTypes: ['VendorBlocked', 'CreditLimitExceeded'] },
});

export const screenFraud = defineRpc('invoices.screenFraud', {
  input: z.object({ invoiceId: z.string(), vendorId: z.string(), amount: z.number().positive(), bankAccountChanged: z.boolean() }),
  output: z.object({ riskScore: z.number().int().min(0).max(100), flags: z.array(z.string()) }),
  handler: ({ invoiceId, amount, bankAccountChanged }) => {
    const flags: string[] = [];
    if (amount % 1000 === 0) flags.push('round-amount');
    if (bankAccountChanged) flags.push('bank-account-changed');
    const riskScore = 10 + (flags.includes('round-amount') ? 25 : 0) + (bankAccountChanged ? 50 : 0);
    if (riskScore >= 80) {
      throw new RpcError(`invoice ${invoiceId} looks fraudulent (risk ${riskScore}: ${flags.join(', ')})`, 'FraudSuspected', {
        nonRetryable: true,
        details: { riskScore, flags },
      });
    }
    return { riskScore, flags };
  },
  retry: { maximumAttempts: 3, initialInterval: '200ms', nonRetryableErrorTypes: ['FraudSuspected'] },
});

export const checkBudget = defineRpc('invoices.checkBudget', {
  input: z.object({ costCenter: z.string(), amount: z.number().positive() }),
  output: z.object({ costCenter: z.string(), budget: z.number(), spent: z.number(), remaining: z.number(), withinBudget: z.boolean() }),
  handler: ({ costCenter, amount }) => {
    const b = BUDGETS[costCenter];
    if (!b) throw new RpcError(`unknown cost center ${costCenter}`, 'UnknownCostCenter', { nonRetryable: true, details: { costCenter } });
    const remaining = b.budget - b.spent - amount;
    return { costCenter, ...b, remaining, withinBudget: remaining >= 0 };
  },
});

export const requestApproval = defineRpc('invoices.requestApproval', {
  input: z.object({ invoiceId: z.string(), role, costCenter: z.string(), amount: z.number().positive(), currency: z.string().length(3) }),
  output: approvalRequest,
  handler: ({ invoiceId, role: r, costCenter }) => {
    const approver = approverFor(costCenter, r);
    if (approver.away) {
      throw new RpcError(`the ${r} of ${costCenter} (${approver.email}) is out of office`, 'ApproverUnavailable', {
        nonRetryable: true,
        details: { costCenter, role: r, approver: approver.email },
      });
    }
    return { requestId: `apr-${invoiceId}-${r}`, approver: approver.email, role: r, escalated: false };
  },
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['ApproverUnavailable', 'NoApprover'] },
});

export const escalateApproval = defineRpc('invoices.escalate', {
  input: z.object({
    invoiceId: z.string(),
    costCenter: z.string(),
    amount: z.number().positive(),
    fromRole: role,
    reason: z.string(),
    errorType: z.string(),
  }),
  output: approvalRequest.extend({ reason: z.string() }),
  handler: ({ invoiceId, costCenter, reason }) => {
    const director = approverFor(costCenter, 'director');
    return { requestId: `apr-${invoiceId}-director`, approver: director.email, role: 'director' as const, escalated: true, reason };
  },
});

export const remindApprover = defineRpc('invoices.remindApprover', {
  input: z.object({ requestId: z.string(), approver: z.email(), invoiceId: z.string() }),
  output: z.object({ reminderId: z.string(), sentTo: z.email() }),
  handler: ({ requestId, approver }) => ({ reminderId: `rem-${requestId}`, sentTo: approver }),
});

export const collectDecision = defineRpc('invoices.collectDecision', {
  input: z.object({ requestId: z.string(), invoiceId: z.string(), approver: z.email(), role, amount: z.number().positive() }),
  output: z.object({ approved: z.boolean(), decidedBy: z.email(), comment: z.string() }),
  handler: ({ approver, role: r, amount }) => {
    const limit = APPROVAL_LIMITS[r];
    return amount <= limit
      ? { approved: true, decidedBy: approver, comment: `approved by the ${r} within their limit of ${limit}` }
      : { approved: false, decidedBy: approver, comment: `rejected: ${amount} is above the ${r} limit of ${limit}` };
  },
});
