/**
 * The four read queries of `bench:reads`, as Tradetrail GraphQL and as the PostGraphile 5 equivalent
 * (V4 preset names), selecting the same scalar fields in the same order. PostGraphile's fields are
 * aliased to Tradetrail's names and both use `edges { node }` for connections, so the two answers have
 * one shape and `sameAnswer` compares their values (decimals as numbers, times to the millisecond).
 */

export type QueryName = 'a' | 'b' | 'c' | 'd';
export const QUERY_NAMES: QueryName[] = ['a', 'b', 'c', 'd'];

/** What a query is run with: the ids it names and whose token it carries. */
export interface QueryIds {
  /** The position of (a): the one whose linked orders are closest to 97 in number. */
  positionId: string;
  /** Its trader: (a), (c) and (d) carry this trader's token. */
  traderId: string;
  /** (d): an order of that trader with about 3 fills. */
  orderId: string;
}

export interface BenchQuery {
  name: QueryName;
  what: string;
  /** Whose token: the trader of QueryIds, or compliance (which sees every position). */
  as: 'trader' | 'compliance';
  tradetrail: string;
  postgraphile: string;
  variables: (ids: QueryIds) => Record<string, string>;
}

/** The scalar fields selected: the same names in both schemas. */
const ORDER =
  'id symbol side orderType quantity price status filledQuantity averageFillPrice createdAt submittedAt filledAt';
const FILL = 'id execId quantity price commission liquidity venue executedAt';
const LOG = 'id seq action fromStatus toStatus actor occurredAt recordedAt';
const POSITION = 'id symbol status quantity averageEntryPrice realizedPnl totalCommission openedAt';
/** Tradetrail's orderings, for PostGraphile: a position's orders oldest first, fills in execution order. */
const PG_ORDERS_OF_POSITION = 'orderBy: [CREATED_AT_ASC, ID_ASC]';
const PG_FILLS_OF_ORDER = 'orderBy: [EXECUTED_AT_ASC, ARRIVAL_ASC]';

export const QUERIES: BenchQuery[] = [
  {
    name: 'a',
    what: "one position's trail: ~97 orders, each with fills and log",
    as: 'trader',
    tradetrail: `query Trail($id: ID!) { position(id: $id) { ${POSITION}
      orders(first: 100) { edges { node { ${ORDER} fills { ${FILL} } executionLogs { ${LOG} } } } } } }`,
    postgraphile: `query Trail($id: UUID!) { position: positionById(id: $id) { ${POSITION}
      orders: ordersByPositionId(first: 100, ${PG_ORDERS_OF_POSITION}) { edges { node { ${ORDER}
        fills: fillsByOrderIdList(${PG_FILLS_OF_ORDER}) { ${FILL} }
        executionLogs: executionLogsByOrderIdList(orderBy: SEQ_ASC) { ${LOG} } } } } } }`,
    variables: (ids) => ({ id: ids.positionId }),
  },
  {
    name: 'b',
    what: 'the 50 first opened positions, each orders(first: 20) with fills',
    as: 'compliance',
    tradetrail: `query Positions { positions(first: 50, orderBy: { field: OPENED_AT, direction: ASC }) { edges { node {
      ${POSITION}
      orders(first: 20) { edges { node { ${ORDER} fills { ${FILL} } } } } } } } }`,
    postgraphile: `query Positions { positions: allPositions(first: 50, orderBy: [OPENED_AT_ASC, ID_ASC]) { edges { node {
      ${POSITION}
      orders: ordersByPositionId(first: 20, ${PG_ORDERS_OF_POSITION}) { edges { node { ${ORDER}
        fills: fillsByOrderIdList(${PG_FILLS_OF_ORDER}) { ${FILL} } } } } } } } }`,
    variables: () => ({}),
  },
  {
    name: 'c',
    what: "a trader's orders: a page of 100 with totalCount",
    as: 'trader',
    tradetrail: `query Orders($trader: ID!) { orders(first: 100, filter: { traderId: $trader }) { totalCount
      edges { node { ${ORDER} } } } }`,
    postgraphile: `query Orders($trader: UUID!) { orders: allOrders(first: 100, condition: { traderId: $trader },
      orderBy: [CREATED_AT_DESC, ID_DESC]) { totalCount edges { node { ${ORDER} } } } }`,
    variables: (ids) => ({ trader: ids.traderId }),
  },
  {
    name: 'd',
    what: 'one order by id with its fills',
    as: 'trader',
    tradetrail: `query Order($id: ID!) { order(id: $id) { ${ORDER} fills { ${FILL} } } }`,
    postgraphile: `query Order($id: UUID!) { order: orderById(id: $id) { ${ORDER}
      fills: fillsByOrderIdList(${PG_FILLS_OF_ORDER}) { ${FILL} } } }`,
    variables: (ids) => ({ id: ids.orderId }),
  },
];

const DECIMAL = /^-?\d+(\.\d+)?$/;
const TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}(:?\d{2})?)$/;

/** A decimal's canonical text: no trailing zeros after the point, no "-0". */
function canonicalDecimal(text: string): string {
  let t = text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
  t = t.replace(/^(-?)0+(?=\d)/, '$1');
  return t === '-0' ? '0' : t;
}

/** A time as milliseconds since the epoch (Tradetrail answers in milliseconds, PostgreSQL in microseconds). */
function epochMs(text: string): number {
  const m = /^(.*?:\d{2})(\.\d+)?(Z|[+-].*)$/.exec(text.replace(' ', 'T'))!;
  const zone = m[3] === 'Z' ? 'Z' : m[3].length === 3 ? `${m[3]}:00` : m[3];
  return Date.parse(`${m[1]}${(m[2] ?? '.000').slice(0, 4).padEnd(4, '0')}${zone}`);
}

/**
 * Where two answers differ, as `path: value ≠ value`, or null when they are the same: same keys in
 * the same order, same lengths and order of lists, the same scalars up to formatting.
 */
export function sameAnswer(a: unknown, b: unknown, path = 'data'): string | null {
  if (typeof a === 'string' && typeof b === 'string') {
    if (a === b) return null;
    if (DECIMAL.test(a) && DECIMAL.test(b) && canonicalDecimal(a) === canonicalDecimal(b)) return null;
    if (TIME.test(a) && TIME.test(b) && epochMs(a) === epochMs(b)) return null;
    return `${path}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${path}: ${a.length} items ≠ ${b.length} items`;
    for (let i = 0; i < a.length; i++) {
      const d = sameAnswer(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.join() !== kb.join()) return `${path}: fields ${ka.join(',')} ≠ ${kb.join(',')}`;
    for (const k of ka) {
      const d = sameAnswer((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return a === b ? null : `${path}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`;
}

/** How many rows an answer holds (objects with an id, at every level), to show what it carries. */
export function countRows(value: unknown): number {
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + countRows(v), 0);
  if (!value || typeof value !== 'object') return 0;
  return ('id' in value ? 1 : 0) + Object.values(value).reduce((n: number, v) => n + countRows(v), 0);
}
