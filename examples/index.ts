/** The examples `npm start` publishes, with their RPCs and sample inputs. */
import orderGraph from './order-fulfilment/graph.json';
import orderInput from './order-fulfilment/input.json';
import * as orderRpcs from './order-fulfilment/rpcs';

export interface Example {
  definition: string;
  graph: unknown;
  sampleInput: unknown;
}

export const examples: Example[] = [{ definition: 'order-fulfilment', graph: orderGraph, sampleInput: orderInput }];

/** Every RPC the examples need. */
export const exampleRpcs = [...Object.values(orderRpcs)];
