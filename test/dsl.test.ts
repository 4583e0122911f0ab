import assert from 'node:assert/strict';
import { z } from 'zod';
import { canonicalJson, versionHash } from '../graph/canonical';
import { defineWorkflow, type CodeDefinition } from '../graph/dsl';
import { allSteps, graphSchema, type Graph, type PinnedContracts } from '../graph/schema';
import { validateGraph } from '../graph/validate';
import orderGraph from '../examples/order-fulfilment/graph.json';
import { chargePayment, createShipment, reserveInventory, sendNotification, validateOrder } from '../examples/order-fulfilment/rpcs';

const orderRpcs = [validateOrder, reserveInventory, chargePayment, createShipment, sendNotification];

/** Contracts as publish pins them: every referenced RPC, sorted by name. */
function contractsOf(graph: Graph): PinnedContracts {
  const names = [...new Set(allSteps(graph).flatMap(({ step }) => (step.type === 'rpc' ? [step.rpc] : [])))].sort();
  const contracts: PinnedContracts = {};
  for (const name of names) contracts[name] = orderRpcs.find((r) => r.name === name)!.contract;
  return contracts;
}

const SUBTOTAL = '$sum(input.items.(quantity * unitPrice))';

/** examples/order-fulfilment/graph.json, written with the DSL. */
function orderFulfilment() {
  return defineWorkflow('order-fulfilment', {
    // defineRpc types `name` as string, so the registry is keyed by name.
    rpcs: {
      'orders.validate': validateOrder,
      'inventory.reserve': reserveInventory,
      'payments.charge': chargePayment,
      'shipping.createShipment': createShipment,
      'notifications.send': sendNotification,
    },
    description: 'Validate an order, price it, reserve stock, charge the customer, ship and notify.',
  })
    .entry('validate')
    .rpc('validate', 'orders.validate', {
      input: { orderId: 'input.orderId', customerId: 'input.customer.id', items: 'input.items' },
      next: 'is-valid',
      ui: { x: 0, y: 0 },
    })
    .if('is-valid', { condition: 'steps.validate.valid', then: 'price', else: 'reject', ui: { x: 0, y: 120 } })
    .fail('reject', { code: 'ORDER_INVALID', message: "'order ' & input.orderId & ' rejected: ' & steps.validate.reason", ui: { x: 240, y: 120 } })
    .assign('price', {
      description: 'Free shipping from 100; express shipping for orders of 500 or more.',
      set: {
        subtotal: `$round(${SUBTOTAL}, 2)`,
        shippingFee: `${SUBTOTAL} >= 100 ? 0 : 9.95`,
        total: `$round(${SUBTOTAL} + (${SUBTOTAL} >= 100 ? 0 : 9.95), 2)`,
        express: `${SUBTOTAL} >= 500`,
      },
      next: 'reserve',
      ui: { x: 0, y: 240 },
    })
    .rpc('reserve', 'inventory.reserve', {
      input: { orderId: 'input.orderId', items: "input.items.{ 'sku': sku, 'quantity': quantity }" },
      saveAs: 'reservation',
      next: 'charge',
      ui: { x: 0, y: 360 },
    })
    .rpc('charge', 'payments.charge', {
      input: { orderId: 'input.orderId', customerId: 'input.customer.id', amount: 'vars.total', currency: 'input.currency' },
      saveAs: 'payment',
      next: 'ship',
      ui: { x: 0, y: 480 },
    })
    .rpc('ship', 'shipping.createShipment', {
      input: { orderId: 'input.orderId', reservationId: 'vars.reservation.reservationId', address: 'input.customer.address', express: 'vars.express' },
      saveAs: 'shipment',
      next: 'notify',
      ui: { x: 0, y: 600 },
    })
    .rpc('notify', 'notifications.send', {
      input: {
        to: 'input.customer.email',
        template: "'order-shipped'",
        data: { orderId: 'input.orderId', total: 'vars.total', trackingNumber: 'vars.shipment.trackingNumber' },
      },
      next: 'done',
      ui: { x: 0, y: 720 },
    })
    .return('done', {
      output: {
        orderId: 'input.orderId',
        total: 'vars.total',
        chargeId: 'vars.payment.chargeId',
        trackingNumber: 'vars.shipment.trackingNumber',
        carrier: 'vars.shipment.carrier',
      },
      ui: { x: 0, y: 840 },
    });
}

/** Structural RPCs with literal names: the array form of the registry. */
const mathAdd = { name: 'math.add', input: z.object({ a: z.number(), b: z.number() }), output: z.object({ sum: z.number() }) } as const;
const textGreet = { name: 'text.greet', input: z.object({ name: z.string(), polite: z.boolean().optional() }), output: z.object({ greeting: z.string() }) } as const;
const ping = { name: 'test.ping', input: z.object({}), output: z.object({}) } as const;

describe('graph: code DSL', () => {
  it('writes the order-fulfilment example exactly as its JSON form, with the same version hash', () => {
    const graph = orderFulfilment().toGraph();
    assert.deepEqual(graph, orderGraph);
    assert.equal(JSON.stringify(graph), JSON.stringify(orderGraph));
    assert.equal(canonicalJson(graph), canonicalJson(orderGraph));
    const fromJson = graphSchema.parse(orderGraph);
    assert.deepEqual(Object.keys(contractsOf(graph)), ['inventory.reserve', 'notifications.send', 'orders.validate', 'payments.charge', 'shipping.createShipment']);
    assert.equal(versionHash(graph, contractsOf(graph)), versionHash(fromJson, contractsOf(fromJson)));
  });

  it('returns { definition, graph } for the worker to publish', () => {
    const def: CodeDefinition = orderFulfilment().toDefinition();
    assert.deepEqual(Object.keys(def), ['definition', 'graph']);
    assert.equal(def.definition, 'order-fulfilment');
    assert.deepEqual(def.graph, orderGraph);
  });

  it('builds every step type, nested subgraphs included, as the JSON form', async () => {
    const graph = defineWorkflow('every-step', { rpcs: [mathAdd, textGreet, ping], notes: 'all of them', ui: { zoom: 1 } })
      .entry('route')
      .switch('route', {
        cases: [
          { when: "input.kind = 'batch'", next: 'each' },
          { when: "input.kind = 'fan'", next: 'fan' },
        ],
        default: 'nap',
      })
      .forEach('each', {
        items: 'input.numbers',
        body: (sub) => sub.entry('add').rpc('add', 'math.add', { input: { a: 'item', b: 1 }, timeout: '5s', retry: { maximumAttempts: 2 } }),
        concurrency: 4,
        onItemError: 'continue',
        saveAs: 'sums',
        next: 'done',
        onError: 'oops',
      })
      .parallel('fan', {
        branches: {
          greet: (sub) =>
            sub
              .rpc('hello', 'text.greet', { input: { name: 'input.name', polite: true }, saveAs: 'greeting', next: 'mark' })
              .assign('mark', { set: { greeted: true, who: ['input.name', null] } }),
          plain: { entry: 'p', steps: [{ id: 'p', type: 'rpc', rpc: 'test.ping' }] },
        },
        mode: 'failFast',
        saveAs: 'fan',
        next: 'child',
      })
      .child('child', { definition: 'order-fulfilment', version: 'latest', input: 'input.order', saveAs: 'order', next: 'done' })
      .sleep('nap', { duration: '30s', next: 'await', description: 'cool down' })
      .wait('await', { event: 'ticket.closed', correlationKey: 'input.ticketId', match: "event.status = 'done'", timeout: '2h', onTimeout: 'timed-out', saveAs: 'ticket', next: 'done' })
      .fail('timed-out', { code: 'TICKET_TIMEOUT', message: "'no answer for ' & input.ticketId" })
      .fail('oops', { code: 'BATCH_FAILED', message: 'error.message' })
      .return('done', { output: { sums: 'vars.sums', fan: 'vars.fan', order: 'vars.order', ticket: 'vars.ticket' } })
      .toGraph();

    const expected = {
      notes: 'all of them',
      ui: { zoom: 1 },
      entry: 'route',
      steps: [
        {
          id: 'route',
          type: 'switch',
          cases: [
            { when: "input.kind = 'batch'", next: 'each' },
            { when: "input.kind = 'fan'", next: 'fan' },
          ],
          default: 'nap',
        },
        {
          id: 'each',
          type: 'forEach',
          items: 'input.numbers',
          body: { entry: 'add', steps: [{ id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 'item', b: 1 }, timeout: '5s', retry: { maximumAttempts: 2 } }] },
          concurrency: 4,
          onItemError: 'continue',
          saveAs: 'sums',
          next: 'done',
          onError: 'oops',
        },
        {
          id: 'fan',
          type: 'parallel',
          branches: {
            greet: {
              entry: 'hello',
              steps: [
                { id: 'hello', type: 'rpc', rpc: 'text.greet', input: { name: 'input.name', polite: true }, saveAs: 'greeting', next: 'mark' },
                { id: 'mark', type: 'assign', set: { greeted: true, who: ['input.name', null] } },
              ],
            },
            plain: { entry: 'p', steps: [{ id: 'p', type: 'rpc', rpc: 'test.ping' }] },
          },
          mode: 'failFast',
          saveAs: 'fan',
          next: 'child',
        },
        { id: 'child', type: 'child', definition: 'order-fulfilment', version: 'latest', input: 'input.order', saveAs: 'order', next: 'done' },
        { id: 'nap', type: 'sleep', duration: '30s', next: 'await', description: 'cool down' },
        {
          id: 'await',
          type: 'wait',
          event: 'ticket.closed',
          correlationKey: 'input.ticketId',
          match: "event.status = 'done'",
          timeout: '2h',
          onTimeout: 'timed-out',
          saveAs: 'ticket',
          next: 'done',
        },
        { id: 'timed-out', type: 'fail', code: 'TICKET_TIMEOUT', message: "'no answer for ' & input.ticketId" },
        { id: 'oops', type: 'fail', code: 'BATCH_FAILED', message: 'error.message' },
        { id: 'done', type: 'return', output: { sums: 'vars.sums', fan: 'vars.fan', order: 'vars.order', ticket: 'vars.ticket' } },
      ],
    };
    assert.deepEqual(graph, expected);
    assert.equal(JSON.stringify(graph), JSON.stringify(expected));
    assert.deepEqual(await validateGraph(graph, { rpcNames: new Set(['math.add', 'text.greet', 'test.ping']) }), expected);
  });

  it('leaves out undefined-valued keys and returns plain, fresh JSON', () => {
    const maybe = (s: string): string | undefined => (s === 'yes' ? s : undefined);
    const wf = defineWorkflow('plain-json', { rpcs: [mathAdd, ping], description: undefined })
      .rpc('add', 'math.add', { input: { a: 1, b: 2 }, saveAs: maybe('no'), next: undefined, retry: { maximumAttempts: 3, initialInterval: undefined } })
      .rpc('ping', 'test.ping')
      .return('done');
    const graph = wf.toGraph();
    assert.deepEqual(graph, {
      entry: 'add',
      steps: [
        { id: 'add', type: 'rpc', rpc: 'math.add', input: { a: 1, b: 2 }, retry: { maximumAttempts: 3 } },
        { id: 'ping', type: 'rpc', rpc: 'test.ping' },
        { id: 'done', type: 'return' },
      ],
    });
    assert.equal(JSON.stringify(JSON.parse(JSON.stringify(graph))), JSON.stringify(graph));
    for (const { step } of allSteps(graph)) assert.equal(Object.getPrototypeOf(step), Object.prototype);
    (graph.steps[0] as { input: { a: number } }).input.a = 99;
    assert.deepEqual((wf.toGraph().steps[0] as { input: unknown }).input, { a: 1, b: 2 });
  });

  it('refuses a record registry whose key is not its RPC name', () => {
    // @ts-expect-error with literal RPC names the mismatch is a compile error too; this checks the runtime guard
    assert.throws(() => defineWorkflow('mismatch', { rpcs: { 'orders.check': validateOrder } }), /rpcs key "orders.check" holds RPC "orders.validate"/);
  });

  it('turns a wrong RPC name, input field or field type into a compile error', () => {
    // Each line below must fail to type-check; tsc fails the build if it does not.
    // The calls still run: the DSL leaves validation to publish.
    const wf = defineWorkflow('typed', { rpcs: [mathAdd, textGreet, ping] });
    const orders = defineWorkflow('typed-orders', { rpcs: { 'orders.validate': validateOrder } });

    // @ts-expect-error an RPC that is not in the registry
    wf.rpc('unknown', 'math.sub', { input: { a: 1, b: 2 } });
    // @ts-expect-error an RPC that is not in the record registry
    orders.rpc('unknown', 'orders.validat', { input: 'input' });
    // @ts-expect-error an input field the RPC's input type does not have
    wf.rpc('extra', 'math.add', { input: { a: 1, b: 2, c: 3 } });
    // @ts-expect-error an input field the RPC's input type does not have (record registry)
    orders.rpc('extra', 'orders.validate', { input: { orderId: 'input.orderId', customerId: 'input.customer', items: 'input.items', coupon: 'x' } });
    // @ts-expect-error a required input field is missing
    wf.rpc('missing', 'math.add', { input: { a: 1 } });
    // @ts-expect-error an RPC with required input fields needs an input
    wf.rpc('no-input', 'math.add');
    // @ts-expect-error an input value that is not a mapping
    wf.rpc('bad-value', 'math.add', { input: { a: 1, b: undefined as unknown as Date } });
    wf.rpc('optional', 'text.greet', { input: { name: 'input.name' } }).rpc('whole', 'math.add', { input: 'input' }).rpc('empty', 'test.ping');
    // @ts-expect-error concurrency is a number
    wf.forEach('each', { items: 'input.xs', body: (sub) => sub.rpc('p', 'test.ping'), concurrency: '4' });
    // @ts-expect-error onItemError is 'fail' or 'continue'
    wf.forEach('each', { items: 'input.xs', body: (sub) => sub.rpc('p', 'test.ping'), onItemError: 'ignore' });
    // @ts-expect-error RPC names are checked in nested subgraphs too
    wf.parallel('fan', { branches: { a: (sub) => sub.rpc('x', 'math.sub') } });
    // @ts-expect-error a fail step takes no onError
    wf.fail('f', { code: 'X', message: "'x'", onError: 'g' });
    // @ts-expect-error a sleep takes duration or until, not both
    wf.sleep('s', { duration: '1s', until: 'input.at' });
    // @ts-expect-error onTimeout needs a timeout
    wf.wait('w', { event: 'e', correlationKey: 'input.id', onTimeout: 't' });
    // @ts-expect-error an unknown step field
    wf.assign('a', { set: { x: 1 }, nxt: 'b' });
    // defineRpc keeps literal names, so an array of real RPCs is checked too.
    const real = defineWorkflow('real', { rpcs: [validateOrder] });
    real.rpc('ok', 'orders.validate', { input: { orderId: 'input.orderId', customerId: 'input.customer.id', items: 'input.items' } });
    // @ts-expect-error a misspelled RPC name with an array of defineRpc results
    real.rpc('typo', 'orders.validat', { input: 'input' });
    // @ts-expect-error a wrong input field with an array of defineRpc results
    real.rpc('field', 'orders.validate', { input: { orderId: 'input.orderId', customerId: 'input.customer.id', item: 'input.items' } });
    // @ts-expect-error a record key must match a literal RPC name
    assert.throws(() => defineWorkflow('mismatch', { rpcs: { 'math.sub': mathAdd } }), /rpcs key "math.sub" holds RPC "math.add"/);

    assert.ok(wf.toGraph().steps.length > 0);
  });
});
