/** The examples `npm start` publishes, with their RPCs and sample inputs. */
import customerImportGraph from './customer-import/graph.json';
import customerImportInput from './customer-import/input.json';
import * as customerImportRpcs from './customer-import/rpcs';
import incidentGraph from './incident-response/graph.json';
import incidentInput from './incident-response/input.json';
import postmortemGraph from './incident-response/postmortem.graph.json';
import postmortemInput from './incident-response/postmortem.input.json';
import * as incidentRpcs from './incident-response/rpcs';
import invoiceGraph from './invoice-approval/graph.json';
import invoiceInput from './invoice-approval/input.json';
import * as invoiceRpcs from './invoice-approval/rpcs';
import orderGraph from './order-fulfilment/graph.json';
import orderInput from './order-fulfilment/input.json';
import * as orderRpcs from './order-fulfilment/rpcs';
import supportGraph from './support-ticket/graph.json';
import supportInput from './support-ticket/input.json';
import * as supportRpcs from './support-ticket/rpcs';

export interface Example {
  definition: string;
  graph: unknown;
  sampleInput: unknown;
}

/**
 * In publish order: a definition started by a `child` step is listed (and
 * so published) before the definitions that start it.
 */
export const examples: Example[] = [
  { definition: 'order-fulfilment', graph: orderGraph, sampleInput: orderInput },
  { definition: 'invoice-approval', graph: invoiceGraph, sampleInput: invoiceInput },
  { definition: 'customer-import', graph: customerImportGraph, sampleInput: customerImportInput },
  { definition: 'incident-postmortem', graph: postmortemGraph, sampleInput: postmortemInput },
  { definition: 'incident-response', graph: incidentGraph, sampleInput: incidentInput },
  { definition: 'support-ticket', graph: supportGraph, sampleInput: supportInput },
];

/** Every RPC the examples need (names are unique across examples: one prefix per domain). */
export const exampleRpcs = [
  ...Object.values(orderRpcs),
  ...Object.values(invoiceRpcs),
  ...Object.values(customerImportRpcs),
  ...Object.values(incidentRpcs),
  ...Object.values(supportRpcs),
];
