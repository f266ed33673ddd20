import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { createVerifier, mintToken } from '../src/auth';
import { parseConfig } from '../src/config';
import { loadDemoData } from '../src/demo-data';
import { createTestDatabase, type ListeningApp, listenApp } from './harness';
import { mulberry32 } from './property/scenario';

/**
 * Bad input over HTTP, generated from a fixed seed: every mutation with one field of a valid input
 * made bad, every list query with a bad filter or cursor, and malformed requests. Whatever arrives,
 * the server answers with a clear error (a code and a message), never a 5xx or an internal error, and
 * writes nothing: the row count of every table is the same after the run as before.
 */

const SEED = Number(process.env.TRADETRAIL_FUZZ_SEED ?? 20261207);
const CASES_PER_FIELD = Number(process.env.TRADETRAIL_FUZZ_CASES ?? 3);
/** Mutations given every value of their fields' catalogues; the others get a seeded sample. */
const FULL = (process.env.TRADETRAIL_FUZZ_FULL ?? 'submitOrder,recordExecution,cancelOrder').split(',');

/** Seeded (the property test's generator), so a failure names a seed that reproduces it. */
let random = mulberry32(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
const digits = (n: number): string =>
  Array.from({ length: n }, (_, i) => (i === 0 ? 1 + Math.floor(random() * 9) : Math.floor(random() * 10))).join('');

// ---- bad values, by the kind of field they are given to ------------------------------------------

const junk: unknown[] = [null, true, 12, 1.5, [], {}, ['x'], { a: 1 }];
const badText = (): unknown[] => [
  'AB\u0000CD',
  '\u0000',
  '\ud800',
  'x\udc00y',
  `${'a'.repeat(3)}\ud83d`,
  'x'.repeat(5000),
  'é'.repeat(600),
  12,
  true,
  {},
  [],
];
const badUuid = (): unknown[] => [
  'not-a-uuid',
  '',
  '00000000-0000-0000-0000-00000000000g',
  "' OR 1=1 --",
  '\u0000',
  '\ud800',
  12345,
  {},
];
/** A decimal that no quantity or price column can hold, or that is no decimal at all. */
const badDecimal = (positive: boolean): unknown[] => [
  digits(22),
  digits(23 + Math.floor(random() * 40)),
  `${digits(22)}.5`,
  `1.${digits(9)}${1 + Math.floor(random() * 9)}`,
  `0.${'0'.repeat(9)}1`,
  '-1',
  `-${digits(25)}`,
  ...(positive ? ['0', '-0', '0.000000000'] : []),
  '1e5',
  'NaN',
  'Infinity',
  ' 1',
  '1,5',
  '',
  '0x10',
  '１２',
  1.5,
  7,
  true,
  {},
];
const badDate = (): unknown[] => [
  '0001-01-01T00:00:00Z',
  '0000-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '1969-12-31T23:59:59Z',
  '2200-01-01T00:00:00Z',
  '2024-13-01T00:00:00Z',
  '2024-02-30T00:00:00Z',
  '2024-01-01T24:00:01Z',
  '2024-01-01T00:60:00Z',
  '+275760-09-13T00:00:00Z',
  'yesterday',
  '',
  '2024-01-01',
  1700000000,
  {},
];
const badEnum = (): unknown[] => ['NOPE', 'buy', '', 1, true, '\u0000', {}];
const badInt = (): unknown[] => [-1, 2 ** 31, -(2 ** 31) - 1, 1.5, '10', true, 1e300];
const badBool = (): unknown[] => ['true', 1, 0, 'yes', {}];

type Kind = 'text' | 'uuid' | 'posDec' | 'nonNegDec' | 'date' | 'enum' | 'int' | 'bool';
const valuesOf: Record<Kind, () => unknown[]> = {
  text: badText,
  uuid: badUuid,
  posDec: () => badDecimal(true),
  nonNegDec: () => badDecimal(false),
  date: badDate,
  enum: badEnum,
  int: badInt,
  bool: badBool,
};

// ---- the API surface: each operation with a valid base and the kind of each of its variables ----

interface Ids {
  traderId: string;
  workingOrderId: string;
  workingClientOrderId: string;
  filledOrderId: string;
  openPositionId: string;
  symbol: string;
  execId: string;
  venue: string | null;
}

interface Target {
  name: string;
  query: string;
  /** A valid set of variables (fresh ids for idempotency keys); the fuzzer makes one of them bad. */
  base: (ids: Ids, n: number) => Record<string, unknown>;
  /** Path (dots) of each variable that can be made bad, and its kind. */
  fields: Record<string, Kind>;
}

const MUTATIONS: Target[] = [
  {
    name: 'submitOrder',
    query: `mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id } }`,
    base: (ids, n) => ({
      input: {
        traderId: ids.traderId,
        clientOrderId: `fuzz-${n}`,
        symbol: 'FUZZ',
        side: 'BUY',
        orderType: 'LIMIT',
        timeInForce: 'DAY',
        quantity: '10',
        price: '101.5',
        stopPrice: null,
        stopLoss: '90',
        takeProfit: '120',
        brokerOrderId: `fuzz-broker-${n}`,
        expiresAt: '2030-01-01T00:00:00Z',
        tradeId: null,
        parentOrderId: null,
        submittedAt: '2026-01-02T03:04:05Z',
      },
    }),
    fields: {
      'input.traderId': 'uuid',
      'input.clientOrderId': 'text',
      'input.symbol': 'text',
      'input.side': 'enum',
      'input.orderType': 'enum',
      'input.timeInForce': 'enum',
      'input.quantity': 'posDec',
      'input.price': 'posDec',
      'input.stopLoss': 'posDec',
      'input.takeProfit': 'posDec',
      'input.brokerOrderId': 'text',
      'input.expiresAt': 'date',
      'input.tradeId': 'uuid',
      'input.parentOrderId': 'uuid',
      'input.submittedAt': 'date',
    },
  },
  {
    name: 'recordExecution',
    query: `mutation($input: RecordExecutionInput!) { recordExecution(input: $input) { status error { code message } } }`,
    base: (ids, n) => ({
      input: {
        orderId: ids.workingOrderId,
        execId: `fuzz-exec-${n}`,
        quantity: '1',
        price: '100.25',
        commission: '0.1',
        liquidity: 'MAKER',
        venue: 'FUZZ',
        executedAt: '2026-01-02T03:04:05Z',
      },
    }),
    fields: {
      'input.orderId': 'uuid',
      'input.execId': 'text',
      'input.quantity': 'posDec',
      'input.price': 'posDec',
      'input.commission': 'nonNegDec',
      'input.liquidity': 'enum',
      'input.venue': 'text',
      'input.executedAt': 'date',
    },
  },
  {
    name: 'recordExecutions',
    query: `mutation($inputs: [RecordExecutionInput!]!) { recordExecutions(inputs: $inputs) { applied refused results { status error { code message } } } }`,
    base: (ids, n) => ({
      inputs: [
        {
          traderId: ids.traderId,
          clientOrderId: ids.workingClientOrderId,
          execId: `fuzz-batch-${n}`,
          quantity: '2',
          price: '99',
          executedAt: '2026-01-02T03:04:05Z',
        },
      ],
    }),
    fields: {
      'inputs.0.traderId': 'uuid',
      'inputs.0.clientOrderId': 'text',
      'inputs.0.execId': 'text',
      'inputs.0.quantity': 'posDec',
      'inputs.0.price': 'posDec',
      'inputs.0.executedAt': 'date',
    },
  },
  ...(['acceptOrder', 'expireOrder'] as const).map((name): Target => ({
    name,
    query: `mutation($orderId: ID!, $occurredAt: DateTimeISO) { ${name}(orderId: $orderId, occurredAt: $occurredAt) { id } }`,
    base: (ids) => ({ orderId: ids.workingOrderId, occurredAt: '2026-01-02T03:04:05Z' }),
    fields: { orderId: 'uuid', occurredAt: 'date' },
  })),
  {
    name: 'cancelOrder',
    query: `mutation($orderId: ID!, $reason: String, $occurredAt: DateTimeISO) { cancelOrder(orderId: $orderId, reason: $reason, occurredAt: $occurredAt) { id } }`,
    base: (ids) => ({ orderId: ids.workingOrderId, reason: 'fuzz', occurredAt: '2026-01-02T03:04:05Z' }),
    fields: { orderId: 'uuid', reason: 'text', occurredAt: 'date' },
  },
  {
    name: 'rejectOrder',
    query: `mutation($orderId: ID!, $reason: String!, $errorCode: String) { rejectOrder(orderId: $orderId, reason: $reason, errorCode: $errorCode) { id } }`,
    base: (ids) => ({ orderId: ids.workingOrderId, reason: 'fuzz', errorCode: 'FUZZ' }),
    fields: { orderId: 'uuid', reason: 'text', errorCode: 'text' },
  },
  {
    name: 'replaceOrder',
    query: `mutation($orderId: ID!, $input: ReplaceOrderInput!) { replaceOrder(orderId: $orderId, input: $input) { id } }`,
    base: (ids, n) => ({
      orderId: ids.workingOrderId,
      input: { clientOrderId: `fuzz-replace-${n}`, quantity: '5', price: '10', stopPrice: null, timeInForce: 'GTC' },
    }),
    fields: {
      orderId: 'uuid',
      'input.clientOrderId': 'text',
      'input.quantity': 'posDec',
      'input.price': 'posDec',
      'input.timeInForce': 'enum',
    },
  },
  {
    name: 'correctExecution',
    query: `mutation($input: CorrectExecutionInput!) { correctExecution(input: $input) { status } }`,
    base: (ids, n) => ({
      input: {
        correctionId: `fuzz-correction-${n}`,
        execId: ids.execId,
        venue: ids.venue,
        quantity: '1',
        price: '1',
        commission: '0',
        reason: 'fuzz',
      },
    }),
    fields: {
      'input.correctionId': 'text',
      'input.execId': 'text',
      'input.venue': 'text',
      'input.quantity': 'posDec',
      'input.price': 'posDec',
      'input.commission': 'nonNegDec',
      'input.reason': 'text',
    },
  },
  {
    name: 'bustExecution',
    query: `mutation($input: BustExecutionInput!) { bustExecution(input: $input) { status } }`,
    base: (ids, n) => ({
      input: { correctionId: `fuzz-bust-${n}`, execId: ids.execId, venue: ids.venue, reason: 'fuzz' },
    }),
    fields: { 'input.correctionId': 'text', 'input.execId': 'text', 'input.venue': 'text', 'input.reason': 'text' },
  },
  {
    name: 'linkOrderToPosition',
    query: `mutation($orderId: ID!, $positionId: ID!, $reason: String) { linkOrderToPosition(orderId: $orderId, positionId: $positionId, reason: $reason) { id } }`,
    base: (ids) => ({ orderId: ids.workingOrderId, positionId: ids.openPositionId, reason: 'fuzz' }),
    fields: { orderId: 'uuid', positionId: 'uuid', reason: 'text' },
  },
  {
    name: 'unlinkOrder',
    query: `mutation($orderId: ID!, $reason: String) { unlinkOrder(orderId: $orderId, reason: $reason) { id } }`,
    base: (ids) => ({ orderId: ids.filledOrderId, reason: 'fuzz' }),
    fields: { orderId: 'uuid', reason: 'text' },
  },
  {
    name: 'recalculateBook',
    query: `mutation($traderId: ID!, $symbol: String!) { recalculateBook(traderId: $traderId, symbol: $symbol) { changed } }`,
    base: (ids) => ({ traderId: ids.traderId, symbol: ids.symbol }),
    fields: { traderId: 'uuid', symbol: 'text' },
  },
  {
    name: 'recalculatePosition',
    query: `mutation($positionId: ID!) { recalculatePosition(positionId: $positionId) { changed } }`,
    base: (ids) => ({ positionId: ids.openPositionId }),
    fields: { positionId: 'uuid' },
  },
  {
    name: 'reconcile',
    query: `mutation($apply: Boolean!, $from: DateTimeISO, $to: DateTimeISO, $maxFixes: Int!) { reconcile(apply: $apply, from: $from, to: $to, maxFixes: $maxFixes) { fixCount } }`,
    base: () => ({ apply: false, from: '2020-01-01T00:00:00Z', to: '2030-01-01T00:00:00Z', maxFixes: 10 }),
    fields: { apply: 'bool', from: 'date', to: 'date', maxFixes: 'int' },
  },
];

const LISTS: Target[] = [
  {
    name: 'orders',
    query: `query($filter: OrderFilter, $orderBy: OrderOrderBy, $first: Int!, $after: String) { orders(filter: $filter, orderBy: $orderBy, first: $first, after: $after) { totalCount edges { cursor } } }`,
    base: (ids) => ({
      first: 5,
      after: null,
      orderBy: { field: 'CREATED_AT', direction: 'DESC' },
      filter: {
        traderId: ids.traderId,
        symbol: ids.symbol,
        status: ['FILLED'],
        side: 'BUY',
        positionId: ids.openPositionId,
        linked: true,
        createdFrom: '2020-01-01T00:00:00Z',
        createdTo: '2030-01-01T00:00:00Z',
        filledFrom: '2020-01-01T00:00:00Z',
        filledTo: '2030-01-01T00:00:00Z',
      },
    }),
    fields: {
      first: 'int',
      'orderBy.field': 'enum',
      'orderBy.direction': 'enum',
      'filter.traderId': 'uuid',
      'filter.symbol': 'text',
      'filter.status.0': 'enum',
      'filter.side': 'enum',
      'filter.positionId': 'uuid',
      'filter.linked': 'bool',
      'filter.createdFrom': 'date',
      'filter.createdTo': 'date',
      'filter.filledFrom': 'date',
      'filter.filledTo': 'date',
    },
  },
  {
    name: 'positions',
    query: `query($filter: PositionFilter, $orderBy: PositionOrderBy, $first: Int!, $after: String) { positions(filter: $filter, orderBy: $orderBy, first: $first, after: $after) { totalCount edges { cursor } } }`,
    base: (ids) => ({
      first: 5,
      after: null,
      orderBy: { field: 'OPENED_AT', direction: 'DESC' },
      filter: {
        traderId: ids.traderId,
        symbol: ids.symbol,
        status: 'OPEN',
        openedFrom: '2020-01-01T00:00:00Z',
        openedTo: '2030-01-01T00:00:00Z',
        closedFrom: '2020-01-01T00:00:00Z',
        closedTo: '2030-01-01T00:00:00Z',
      },
    }),
    fields: {
      first: 'int',
      'orderBy.field': 'enum',
      'filter.traderId': 'uuid',
      'filter.symbol': 'text',
      'filter.status': 'enum',
      'filter.openedFrom': 'date',
      'filter.openedTo': 'date',
      'filter.closedFrom': 'date',
      'filter.closedTo': 'date',
    },
  },
  {
    name: 'fills',
    query: `query($filter: FillFilter, $first: Int!, $after: String) { fills(filter: $filter, first: $first, after: $after) { totalCount edges { cursor } } }`,
    base: (ids) => ({
      first: 5,
      after: null,
      filter: {
        traderId: ids.traderId,
        symbol: ids.symbol,
        orderId: ids.filledOrderId,
        positionId: ids.openPositionId,
        exception: false,
        busted: false,
        executedFrom: '2020-01-01T00:00:00Z',
        executedTo: '2030-01-01T00:00:00Z',
      },
    }),
    fields: {
      first: 'int',
      'filter.traderId': 'uuid',
      'filter.symbol': 'text',
      'filter.orderId': 'uuid',
      'filter.positionId': 'uuid',
      'filter.exception': 'bool',
      'filter.executedFrom': 'date',
      'filter.executedTo': 'date',
    },
  },
  {
    name: 'executionLogs',
    query: `query($filter: ExecutionLogFilter, $orderBy: ExecutionLogOrderBy, $first: Int!, $after: String) { executionLogs(filter: $filter, orderBy: $orderBy, first: $first, after: $after) { totalCount edges { cursor } } }`,
    base: (ids) => ({
      first: 5,
      after: null,
      orderBy: { field: 'OCCURRED_AT', direction: 'ASC' },
      filter: {
        traderId: ids.traderId,
        orderId: ids.filledOrderId,
        action: ['FILLED'],
        occurredFrom: '2020-01-01T00:00:00Z',
        occurredTo: '2030-01-01T00:00:00Z',
        recordedFrom: '2020-01-01T00:00:00Z',
        recordedTo: '2030-01-01T00:00:00Z',
      },
    }),
    fields: {
      first: 'int',
      'orderBy.field': 'enum',
      'filter.traderId': 'uuid',
      'filter.orderId': 'uuid',
      'filter.action.0': 'enum',
      'filter.occurredFrom': 'date',
      'filter.recordedTo': 'date',
    },
  },
  {
    name: 'traders',
    query: `query($filter: TraderFilter, $orderBy: TraderOrderBy, $first: Int!, $after: String) { traders(filter: $filter, orderBy: $orderBy, first: $first, after: $after) { totalCount edges { cursor } } }`,
    base: () => ({
      first: 5,
      after: null,
      orderBy: { field: 'NAME', direction: 'ASC' },
      filter: { nameContains: 'a', externalRef: 'x' },
    }),
    fields: { first: 'int', 'orderBy.field': 'enum', 'filter.nameContains': 'text', 'filter.externalRef': 'text' },
  },
  {
    name: 'dataQualityReport',
    query: `query($from: DateTimeISO, $to: DateTimeISO, $types: [DataQualityIssueType!], $first: Int!, $after: String) { dataQualityReport(from: $from, to: $to, types: $types, first: $first, after: $after) { issueCount } }`,
    base: () => ({
      from: '2020-01-01T00:00:00Z',
      to: '2030-01-01T00:00:00Z',
      types: ['UNLINKED_FILLED_ORDER'],
      first: 5,
      after: null,
    }),
    fields: { from: 'date', to: 'date', 'types.0': 'enum', first: 'int' },
  },
  {
    name: 'position.orders',
    query: `query($id: ID!, $first: Int!, $after: String, $status: OrderStatus) { position(id: $id) { orders(first: $first, after: $after, status: $status) { edges { cursor } } } }`,
    base: (ids) => ({ id: ids.openPositionId, first: 5, after: null, status: 'FILLED' }),
    fields: { id: 'uuid', first: 'int', status: 'enum' },
  },
  ...(['position', 'order', 'fill', 'trader', 'verifyExecutionLog'] as const).map((name): Target => ({
    name,
    query:
      name === 'verifyExecutionLog'
        ? `query($id: ID!) { verifyExecutionLog(orderId: $id) { valid } }`
        : `query($id: ID!) { ${name}(id: $id) { id } }`,
    base: (ids) => ({ id: ids.filledOrderId }),
    fields: { id: 'uuid' },
  })),
  {
    name: 'checkpoint',
    query: `query($size: Int!, $to: Int) { checkpoint(treeSize: $size) { treeSize } consistencyProof(fromSize: $size, toSize: $to) { fromSize } }`,
    base: () => ({ size: 1, to: null }),
    fields: { size: 'int', to: 'int' },
  },
  {
    name: 'verifyLedger',
    query: `query($checkpoint: String) { verifyLedger(checkpoint: $checkpoint) { valid } }`,
    base: () => ({ checkpoint: null }),
    fields: { checkpoint: 'text' },
  },
];

/** Cursors that were never handed out: garbage, impossible times, other lists' cursors, edits of real ones. */
function badCursors(real: Record<string, string>): unknown[] {
  const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  const out: unknown[] = [
    '',
    '!!!',
    'null',
    b64('null'),
    b64([]),
    b64({}),
    b64('x'),
    'x'.repeat(3000),
    '\u0000',
    '\ud800',
    12,
  ];
  for (const cursor of Object.values(real)) {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<string, unknown>;
    const times = [
      '2024-13-01T00:00:00.000000Z',
      '2024-01-01T00:60:00.000000Z',
      '2024-01-01T24:00:00.000000Z',
      '0000-01-01T00:00:00.000000Z',
      '2024-02-30T00:00:00.000000Z',
      '2023-02-29T12:00:00.000000Z',
      '2024-01-01T00:00:60.000000Z',
      '99999-01-01T00:00:00.000000Z',
      '2024-01-01 00:00:00',
    ];
    for (const v of times) out.push(b64({ ...c, v }));
    out.push(
      b64({ ...c, v: 'a\u0000b' }),
      b64({ ...c, v: '\ud800' }),
      b64({ ...c, v: 12 }),
      b64({ ...c, id: 'nope' }),
      b64({ ...c, id: `${c.id as string}x` }),
      b64({ ...c, k: 'orders/NOPE/DESC' }),
      b64({ ...c, k: 12 }),
      b64({ ...c, p: 'nope' }),
      b64({ ...c, p: 12 }),
      b64({ ...c, extra: { deep: [1, 2, 3] } }),
      cursor.slice(0, -3),
      `${cursor}==`,
    );
  }
  return out;
}

// ---- plumbing ------------------------------------------------------------------------------------

function setPath(target: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(target);
  const keys = path.split('.');
  let node = copy as Record<string, unknown>;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[keys.at(-1)!] = value;
  return copy;
}

let base: string;
let app: ListeningApp;
let ds: DataSource;
let drop: () => Promise<void>;
let token: string;
const SECRET = 'an-input-fuzz-test-secret-of-32-characters';

async function rowCounts(): Promise<Record<string, number>> {
  // (Not the data-quality baseline: what a successful report remembers of its result, not data a request writes.)
  const tables = (await ds.query(
    `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'dq\\_baseline%' ORDER BY tablename`,
  )) as {
    tablename: string;
  }[];
  const counts: Record<string, number> = {};
  for (const { tablename } of tables) {
    const [{ n }] = (await ds.query(`SELECT count(*)::int AS n FROM "${tablename}"`)) as { n: number }[];
    counts[tablename] = n;
  }
  return counts;
}

interface Answer {
  status: number;
  body: { data?: Record<string, unknown> | null; errors?: { message?: unknown; extensions?: { code?: unknown } }[] };
}

async function send(body: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    body,
  });
  const text = await res.text();
  let parsed: Answer['body'];
  try {
    parsed = JSON.parse(text) as Answer['body'];
  } catch {
    throw new Error(`HTTP ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  return { status: res.status, body: parsed };
}

/** What is wrong with an answer to a bad request (empty when it is a clean refusal or a clean answer). */
function problems(answer: Answer): string[] {
  const found: string[] = [];
  if (answer.status >= 500) found.push(`HTTP ${answer.status}`);
  for (const error of answer.body.errors ?? []) {
    const code = error.extensions?.code;
    if (typeof code !== 'string' || !code) found.push(`an error without a code: ${JSON.stringify(error)}`);
    if (code === 'INTERNAL_SERVER_ERROR') found.push(`INTERNAL_SERVER_ERROR: ${JSON.stringify(error)}`);
    if (typeof error.message !== 'string' || error.message.length < 10) {
      found.push(`an error without a message a person can read: ${JSON.stringify(error)}`);
    }
  }
  return found;
}

/** A bad mutation must be refused: a request error, or (for batches) every execution REFUSED with its error. */
function refused(name: string, answer: Answer): boolean {
  if (answer.body.errors?.length) return true;
  const data = answer.body.data ?? {};
  if (name === 'recordExecution') {
    const r = data.recordExecution as { status: string; error: { code: string; message: string } | null };
    return r.status === 'REFUSED' && !!r.error?.code && !!r.error.message;
  }
  if (name === 'recordExecutions') {
    const r = data.recordExecutions as { results: { status: string; error: { code: string } | null }[] };
    return r.results.every((x) => x.status === 'REFUSED' && !!x.error?.code);
  }
  return false;
}

beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  ds = new DataSource(dataSourceOptions(db.url, 4, false));
  await ds.initialize();
  await loadDemoData(ds);
  const cfg = parseConfig({ NODE_ENV: 'test' });
  app = await listenApp(ds, cfg, createVerifier(cfg, SECRET));
  token = await mintToken(SECRET, { sub: 'input-fuzz', role: 'admin' });
  base = app.base;
});
afterAll(async () => {
  await app?.close();
  await ds?.destroy();
  await drop?.();
});

describe(`bad input over HTTP (seed ${SEED})`, () => {
  it('never reaches an internal error, always names what was wrong, and writes nothing', async () => {
    random = mulberry32(SEED);
    const [ids] = (await ds.query(`
      SELECT w.trader_id AS "traderId", w.id AS "workingOrderId", w.client_order_id AS "workingClientOrderId",f.order_id AS "filledOrderId",
             p.id AS "openPositionId", p.symbol, f.exec_id AS "execId", f.venue
        FROM orders w
        JOIN positions p ON p.trader_id = w.trader_id AND p.status = 'OPEN'
        JOIN orders o ON o.position_id = p.id AND o.status = 'FILLED'
        JOIN fills f ON f.order_id = o.id
       WHERE w.status IN ('ACCEPTED', 'PENDING')
       ORDER BY w.id, p.id, f.id LIMIT 1`)) as Ids[];
    expect(ids).toBeDefined();

    // Real cursors of every list, to be edited into bad ones.
    const real: Record<string, string> = {};
    for (const target of LISTS.filter((t) =>
      ['orders', 'positions', 'fills', 'executionLogs', 'traders'].includes(t.name),
    )) {
      const answer = await send(JSON.stringify({ query: `{ ${target.name}(first: 1) { edges { cursor } } }` }));
      real[target.name] = (answer.body.data![target.name] as { edges: { cursor: string }[] }).edges[0].cursor;
    }
    const [position] = (await ds.query(
      `SELECT position_id AS id FROM orders WHERE position_id IS NOT NULL GROUP BY position_id HAVING count(*) > 1 LIMIT 1`,
    )) as { id: string }[];
    const nested = await send(
      JSON.stringify({ query: `{ position(id: "${position.id}") { orders(first: 1) { edges { cursor } } } }` }),
    );
    real['position.orders'] = (
      nested.body.data!.position as { orders: { edges: { cursor: string }[] } }
    ).orders.edges[0].cursor;

    const before = await rowCounts();
    const failures: string[] = [];
    let sent = 0;
    const check = async (label: string, body: string, mutation?: string): Promise<void> => {
      sent += 1;
      let answer: Answer;
      try {
        answer = await send(body);
      } catch (error) {
        failures.push(`${label}: ${(error as Error).message}`);
        return;
      }
      const found = problems(answer);
      if (mutation && !refused(mutation, answer)) found.push(`accepted: ${JSON.stringify(answer.body).slice(0, 300)}`);
      if (found.length) failures.push(`${label}: ${found.join('; ')}`);
    };

    let n = 0;
    for (const target of [...MUTATIONS, ...LISTS]) {
      const isMutation = MUTATIONS.includes(target);
      for (const [path, kind] of Object.entries(target.fields)) {
        const candidates = valuesOf[kind]();
        // Every value of the catalogue for the money, text and time fields of the FULL mutations, a
        // seeded sample elsewhere.
        const chosen =
          FULL.includes(target.name) && ['posDec', 'nonNegDec', 'text', 'date'].includes(kind)
            ? candidates
            : Array.from({ length: CASES_PER_FIELD }, () => pick(candidates));
        for (const value of chosen) {
          n += 1;
          const variables = setPath(target.base(ids, n), path, value);
          await check(
            `${target.name} ${path}=${JSON.stringify(value)?.slice(0, 60)}`,
            JSON.stringify({ query: target.query, variables }),
            isMutation ? target.name : undefined,
          );
        }
      }
      // The whole input replaced by something of another shape, or a required variable left out.
      for (const value of junk.slice(0, CASES_PER_FIELD + 2)) {
        n += 1;
        const key = Object.keys(target.base(ids, n))[0];
        await check(
          `${target.name} ${key}=${JSON.stringify(value)}`,
          JSON.stringify({ query: target.query, variables: { ...target.base(ids, n), [key]: value } }),
          isMutation ? target.name : undefined,
        );
      }
      if (isMutation) {
        await check(`${target.name} without variables`, JSON.stringify({ query: target.query }), target.name);
        const extra = target.base(ids, ++n);
        const firstKey = Object.keys(extra)[0];
        if (extra[firstKey] && typeof extra[firstKey] === 'object' && !Array.isArray(extra[firstKey])) {
          (extra[firstKey] as Record<string, unknown>).notAField = 1;
          await check(
            `${target.name} with an unknown field`,
            JSON.stringify({ query: target.query, variables: extra }),
            target.name,
          );
        }
      }
    }

    // Cursors: garbage and edited real cursors, to every paged list.
    for (const target of LISTS.filter((t) => real[t.name])) {
      for (const cursor of badCursors({ [target.name]: real[target.name] })) {
        n += 1;
        const variables = { ...target.base(ids, n), after: cursor };
        await check(
          `${target.name} after=${JSON.stringify(cursor).slice(0, 80)}`,
          JSON.stringify({ query: target.query, variables }),
        );
      }
    }
    // Another list's cursor.
    await check(
      'orders with a positions cursor',
      JSON.stringify({
        query: `query($a: String) { orders(after: $a) { totalCount } }`,
        variables: { a: real.positions },
      }),
    );

    // Malformed requests.
    const malformed: [string, string][] = [
      ['unknown operationName', JSON.stringify({ query: '{ orders { totalCount } }', operationName: 'Nope' })],
      [
        'operationName of another type',
        JSON.stringify({ query: 'query A { traders { totalCount } }', operationName: 12 }),
      ],
      [
        'two operations, none named',
        JSON.stringify({ query: 'query A { traders { totalCount } } query B { orders { totalCount } }' }),
      ],
      ['no query', JSON.stringify({ variables: {} })],
      ['query not a string', JSON.stringify({ query: 12 })],
      ['variables not an object', JSON.stringify({ query: '{ traders { totalCount } }', variables: 'x' })],
      ['extensions not an object', JSON.stringify({ query: '{ traders { totalCount } }', extensions: 'x' })],
      [
        'a NUL in a literal',
        JSON.stringify({ query: '{ traders(filter: { nameContains: "a\\u0000b" }) { totalCount } }' }),
      ],
      [
        'a lone surrogate in a literal',
        JSON.stringify({ query: '{ traders(filter: { nameContains: "\\ud800" }) { totalCount } }' }),
      ],
      ['a raw NUL in the query', JSON.stringify({ query: '{ traders { totalCount } }\u0000' })],
      [
        'an overflowing literal',
        JSON.stringify({
          query: `mutation { recordExecution(input: { orderId: "${ids.workingOrderId}", execId: "lit-1", quantity: "${digits(30)}", price: "1", executedAt: "2026-01-01T00:00:00Z" }) { status } }`,
        }),
      ],
      [
        'an impossible date literal',
        JSON.stringify({
          query: `mutation { acceptOrder(orderId: "${ids.workingOrderId}", occurredAt: "2024-02-30T00:00:00Z") { id } }`,
        }),
      ],
      ['not JSON', '{"query": '],
      ['JSON but an array', '[]'],
      ['JSON but a string', '"{ traders { totalCount } }"'],
      ['JSON null', 'null'],
    ];
    for (const [label, body] of malformed) {
      sent += 1;
      const answer = await send(body);
      const found = problems(answer);
      if (!answer.body.errors?.length) found.push(`no error: ${JSON.stringify(answer.body).slice(0, 200)}`);
      if (found.length) failures.push(`${label}: ${found.join('; ')}`);
    }
    // Exports: bad ids and parameters (a download answers with an HTTP status, never a 5xx).
    const exportPaths = [
      ...['orders', 'positions', 'traders'].flatMap((kind) =>
        ['nope', '%00', '%ED%A0%80', 'x'.repeat(300), ids.filledOrderId.toUpperCase()].map(
          (id) => `/export/${kind}/${id}`,
        ),
      ),
      ...[
        'from=0000-01-01',
        'from=0001-01-01',
        'to=9999-12-31',
        'from=2026-13-01',
        'from=2026-02-30',
        'from=2026-01-01T24:00:00Z',
        'from=2026-01-01T00:60:00Z',
        'from=%00',
        'from=2026-01-02&to=2026-01-01',
        'format=xml',
        'format=csv&format=ndjson',
        'nope=1',
        'from[a]=1',
      ].map((q) => `/export/orders/${ids.filledOrderId}?${q}`),
    ];
    for (const path of exportPaths) {
      sent += 1;
      const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
      const text = await res.text();
      if (res.status >= 500) failures.push(`GET ${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
      else if (res.status !== 200 && !/"code":"[A-Z_]+"/.test(text))
        failures.push(`GET ${path}: no error code: ${text.slice(0, 200)}`);
    }

    expect(failures).toEqual([]);
    const unknownOp = await send(JSON.stringify({ query: '{ orders { totalCount } }', operationName: 'Nope' }));
    expect(unknownOp.status).toBe(400);
    expect(unknownOp.body.errors?.[0].message).toMatch(/Nope/);
    expect(sent).toBeGreaterThan(400);
    expect(await rowCounts()).toEqual(before);
    console.log(`input fuzz: ${sent} bad requests (seed ${SEED}), all refused cleanly`);
  });
});

describe('the cases a new user hit, and what they see now', () => {
  const gql = (query: string, variables: Record<string, unknown> = {}, operationName?: string) =>
    send(JSON.stringify({ query, variables, operationName }));
  let order: { id: string; traderId: string };
  beforeAll(async () => {
    [order] = (await ds.query(
      `SELECT id, trader_id AS "traderId" FROM orders WHERE status IN ('ACCEPTED', 'PENDING') ORDER BY id LIMIT 1`,
    )) as { id: string; traderId: string }[];
  });
  const record = (input: Record<string, unknown>) =>
    gql(
      `mutation($input: RecordExecutionInput!) { recordExecution(input: $input) { status error { code message } } }`,
      {
        input: {
          orderId: order.id,
          execId: 'named-1',
          quantity: '1',
          price: '1',
          executedAt: '2026-01-02T00:00:00Z',
          ...input,
        },
      },
    );
  const submit = (input: Record<string, unknown>) =>
    gql(`mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id } }`, {
      input: {
        traderId: order.traderId,
        clientOrderId: 'named-1',
        symbol: 'NAMED',
        side: 'BUY',
        orderType: 'MARKET',
        quantity: '1',
        ...input,
      },
    });

  it('answers each with a code and a message, and writes nothing', async () => {
    const before = await rowCounts();
    const overflow = await submit({ quantity: '99999999999999999999999' });
    expect(overflow.status).toBe(200);
    expect(overflow.body.errors?.[0]).toMatchObject({
      message: expect.stringMatching(/quantity must have at most 21 digits before the decimal point and 9 after/),
      extensions: { code: 'BAD_USER_INPUT', field: 'quantity' },
    });
    expect((await record({ quantity: '99999999999999999999999' })).body.errors?.[0]).toMatchObject({
      message: expect.stringMatching(/quantity must have at most 21 digits/),
      extensions: { code: 'BAD_USER_INPUT', field: 'quantity' },
    });
    for (const text of ['AB\u0000CD', '\ud800']) {
      for (const answer of [await submit({ clientOrderId: text }), await record({ execId: text })]) {
        expect(answer.status).toBe(400);
        expect(answer.body.errors?.[0]).toMatchObject({
          message: expect.stringMatching(
            /variables\.input\.(clientOrderId|execId) contains (a NUL character|an unpaired surrogate)/,
          ),
          extensions: { code: 'BAD_USER_INPUT' },
        });
      }
    }
    for (const executedAt of ['0001-01-01T00:00:00Z', '9999-12-31T00:00:00Z']) {
      const answer = await record({ executedAt });
      expect(answer.status).toBe(400);
      expect(answer.body.errors?.[0]).toMatchObject({
        message: expect.stringMatching(
          /Times must be from 1970-01-01T00:00:00.000Z up to \(not including\) 2200-01-01/,
        ),
        extensions: { code: 'BAD_USER_INPUT' },
      });
    }
    const { body } = await gql(`{ orders(first: 1) { edges { cursor } } }`);
    const cursor = JSON.parse(
      Buffer.from((body.data!.orders as { edges: { cursor: string }[] }).edges[0].cursor, 'base64url').toString(),
    ) as Record<string, string>;
    for (const v of ['2026-13-01T00:00:00.000000Z', '2026-01-01T00:60:00.000000Z', '0000-01-01T00:00:00.000000Z']) {
      const after = Buffer.from(JSON.stringify({ ...cursor, v })).toString('base64url');
      const answer = await gql(`query($after: String) { orders(after: $after) { totalCount } }`, { after });
      expect(answer.body.errors?.[0]).toMatchObject({
        message:
          'after is not a cursor of this list (its position is malformed); use a cursor returned by the same query.',
        extensions: { code: 'BAD_USER_INPUT', field: 'after' },
      });
    }
    const unknown = await gql('{ orders { totalCount } }', {}, 'Nope');
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors?.[0]).toMatchObject({
      message: 'operationName is "Nope", but the query has no operation of that name (it has: (anonymous)).',
      extensions: { code: 'BAD_REQUEST' },
    });
    expect(await rowCounts()).toEqual(before);
  });

  it('refuses, as the safety net, a fill whose position would outgrow its column, and keeps nothing of it', async () => {
    const big = '900000000000000000000'; // 21 digits: one fill fits, two on the same side do not
    const before = await rowCounts();
    const answer = await gql(
      `mutation($inputs: [RecordExecutionInput!]!) { recordExecutions(inputs: $inputs) { applied } }`,
      {
        inputs: [1, 2].map((i) => ({
          orderId: order.id,
          execId: `huge-${i}`,
          quantity: big,
          price: '1',
          executedAt: `2026-01-0${i}T00:00:00Z`,
        })),
      },
    );
    expect(answer.status).toBe(200);
    expect(answer.body.errors?.[0]).toMatchObject({
      message: expect.stringMatching(/A number is larger than the database holds.*nothing was written/),
      extensions: { code: 'BAD_USER_INPUT' },
    });
    expect(await rowCounts()).toEqual(before);
  });
});
