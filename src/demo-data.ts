import { createHash } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import { Dec } from './decimal';
import { ExecutionLogAction } from './execution-log/execution-log.entity';
import { appendLogs } from './execution-log/execution-log.service';
import { Fill, Liquidity } from './fill/fill.entity';
import { Order, OrderSide, OrderSource, OrderStatus, OrderType, TimeInForce } from './order/order.entity';
import { Position, PositionStatus } from './position/position.entity';
import { contractMultiplier } from './position/instrument';
import { applyFill, averageEntryPrice, averageFillPrice, FLAT, type PositionState } from './position/position.math';
import type { JsonObject } from './scalars';
import { Trader } from './trader/trader.entity';

/**
 * A small, deterministic audit trail for trying Tradetrail: three traders; open, closed and flipped
 * positions; pending, accepted, partial, filled, cancelled, rejected and expired orders; fills and
 * their execution logs; one filled order left unlinked. Ids are derived from names, so the README's
 * examples can name them. Positions are computed from the fills with the same arithmetic as the
 * write path (position.math), so every invariant of DOMAIN.md §4 holds.
 */

/** A stable UUID (version 5 layout) for a demo object's name. */
export function demoId(name: string): string {
  const h = createHash('sha1').update(`tradetrail-demo:${name}`).digest('hex');
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

interface DemoFill {
  exec: string;
  qty: string;
  price: string;
  commission: string;
  at: string;
  liquidity?: Liquidity;
  venue: string;
}

interface DemoOrder {
  key: string;
  trader: string;
  symbol: string;
  side: OrderSide;
  type: OrderType;
  qty: string;
  price?: string;
  tif: TimeInForce;
  submittedAt: string;
  acceptedAt?: string;
  fills?: DemoFill[];
  end?: {
    status: OrderStatus.CANCELLED | OrderStatus.REJECTED | OrderStatus.EXPIRED;
    at: string;
    reason: string;
    errorCode?: string;
  };
  /** Left unlinked: its fills were recorded before it was tied to a position. */
  unlinked?: boolean;
}

const TRADERS = [
  { key: 'alice', name: 'Alice Chen', externalRef: 'ACC-1001' },
  { key: 'bob', name: 'Bob Martin', externalRef: 'ACC-1002' },
  { key: 'carol', name: 'Carol Diaz', externalRef: 'ACC-1003' },
];

const { BUY, SELL } = OrderSide;
const { MARKET, LIMIT } = OrderType;
const { MAKER, TAKER } = Liquidity;

const ORDERS: DemoOrder[] = [
  // Alice: AAPL built in two fills, half sold (OPEN with realized PnL); a working order on top.
  {
    key: 'a1',
    trader: 'alice',
    symbol: 'AAPL',
    side: BUY,
    type: LIMIT,
    qty: '100',
    price: '190.00',
    tif: TimeInForce.DAY,
    submittedAt: '2026-11-16T14:35:00.000Z',
    acceptedAt: '2026-11-16T14:35:00.412Z',
    fills: [
      {
        exec: 'XNAS-100231',
        qty: '60',
        price: '189.95',
        commission: '0.30',
        at: '2026-11-16T14:36:10.118Z',
        liquidity: MAKER,
        venue: 'XNAS',
      },
      {
        exec: 'XNAS-100388',
        qty: '40',
        price: '190.00',
        commission: '0.20',
        at: '2026-11-16T14:41:02.730Z',
        liquidity: MAKER,
        venue: 'XNAS',
      },
    ],
  },
  {
    key: 'a2',
    trader: 'alice',
    symbol: 'AAPL',
    side: SELL,
    type: MARKET,
    qty: '50',
    tif: TimeInForce.DAY,
    submittedAt: '2026-11-18T15:02:00.000Z',
    acceptedAt: '2026-11-18T15:02:00.205Z',
    fills: [
      {
        exec: 'ARCX-77120',
        qty: '50',
        price: '195.50',
        commission: '0.25',
        at: '2026-11-18T15:02:00.981Z',
        liquidity: TAKER,
        venue: 'ARCX',
      },
    ],
  },
  {
    key: 'a3',
    trader: 'alice',
    symbol: 'AAPL',
    side: BUY,
    type: LIMIT,
    qty: '30',
    price: '185.00',
    tif: TimeInForce.GTC,
    submittedAt: '2026-11-19T14:40:00.000Z',
    acceptedAt: '2026-11-19T14:40:00.350Z',
  },
  // Alice: MSFT bought and sold out (CLOSED).
  {
    key: 'a4',
    trader: 'alice',
    symbol: 'MSFT',
    side: BUY,
    type: LIMIT,
    qty: '20',
    price: '410.00',
    tif: TimeInForce.DAY,
    submittedAt: '2026-11-16T16:00:00.000Z',
    acceptedAt: '2026-11-16T16:00:00.301Z',
    fills: [
      {
        exec: 'XNAS-101502',
        qty: '20',
        price: '409.80',
        commission: '0.10',
        at: '2026-11-16T16:00:03.554Z',
        liquidity: MAKER,
        venue: 'XNAS',
      },
    ],
  },
  {
    key: 'a5',
    trader: 'alice',
    symbol: 'MSFT',
    side: SELL,
    type: LIMIT,
    qty: '20',
    price: '415.00',
    tif: TimeInForce.DAY,
    submittedAt: '2026-11-17T17:30:00.000Z',
    acceptedAt: '2026-11-17T17:30:00.288Z',
    fills: [
      {
        exec: 'XNAS-204410',
        qty: '12',
        price: '415.25',
        commission: '0.06',
        at: '2026-11-17T17:31:40.020Z',
        liquidity: MAKER,
        venue: 'XNAS',
      },
      {
        exec: 'BATS-88213',
        qty: '8',
        price: '415.40',
        commission: '0.04',
        at: '2026-11-17T17:33:12.640Z',
        liquidity: MAKER,
        venue: 'BATS',
      },
    ],
  },
  // Alice: TSLA short, then a larger buy flips it long (same position, still OPEN).
  {
    key: 'a6',
    trader: 'alice',
    symbol: 'TSLA',
    side: SELL,
    type: MARKET,
    qty: '10',
    tif: TimeInForce.DAY,
    submittedAt: '2026-11-17T14:45:00.000Z',
    acceptedAt: '2026-11-17T14:45:00.190Z',
    fills: [
      {
        exec: 'ARCX-80021',
        qty: '10',
        price: '250.00',
        commission: '0.05',
        at: '2026-11-17T14:45:00.702Z',
        liquidity: TAKER,
        venue: 'ARCX',
      },
    ],
  },
  {
    key: 'a7',
    trader: 'alice',
    symbol: 'TSLA',
    side: BUY,
    type: LIMIT,
    qty: '25',
    price: '241.00',
    tif: TimeInForce.DAY,
    submittedAt: '2026-11-19T19:10:00.000Z',
    acceptedAt: '2026-11-19T19:10:00.240Z',
    fills: [
      {
        exec: 'XNAS-305517',
        qty: '25',
        price: '240.00',
        commission: '0.125',
        at: '2026-11-19T19:10:02.376Z',
        liquidity: MAKER,
        venue: 'XNAS',
      },
    ],
  },
  // Bob: a partial fill still working, a cancel after a partial fill, a rejection, an expiry, an unlinked fill.
  {
    key: 'b1',
    trader: 'bob',
    symbol: 'NVDA',
    side: BUY,
    type: LIMIT,
    qty: '50',
    price: '120.00',
    tif: TimeInForce.GTC,
    submittedAt: '2026-11-18T14:31:00.000Z',
    acceptedAt: '2026-11-18T14:31:00.150Z',
    fills: [
      {
        exec: 'XNAS-400001',
        qty: '30',
        price: '119.98',
        commission: '0.15',
        at: '2026-11-18T14:33:21.500Z',
        liquidity: MAKER,
        venue: 'XNAS',
      },
    ],
  },
  {
    key: 'b2',
    trader: 'bob',
    symbol: 'AMD',
    side: BUY,
    type: MARKET,
    qty: '40',
    tif: TimeInForce.DAY,
    submittedAt: '2026-11-18T15:10:00.000Z',
    acceptedAt: '2026-11-18T15:10:00.222Z',
    fills: [
      {
        exec: 'ARCX-90510',
        qty: '10',
        price: '138.40',
        commission: '0.05',
        at: '2026-11-18T15:10:00.840Z',
        liquidity: TAKER,
        venue: 'ARCX',
      },
    ],
    end: { status: OrderStatus.CANCELLED, at: '2026-11-18T15:12:30.000Z', reason: 'Cancelled by the trader' },
  },
  {
    key: 'b3',
    trader: 'bob',
    symbol: 'AMD',
    side: SELL,
    type: LIMIT,
    qty: '1000',
    price: '150.00',
    tif: TimeInForce.DAY,
    submittedAt: '2026-11-19T14:50:00.000Z',
    end: {
      status: OrderStatus.REJECTED,
      at: '2026-11-19T14:50:00.310Z',
      reason: 'Insufficient shares to sell',
      errorCode: 'INSUFFICIENT_POSITION',
    },
  },
  {
    key: 'b4',
    trader: 'bob',
    symbol: 'GOOGL',
    side: BUY,
    type: MARKET,
    qty: '15',
    tif: TimeInForce.DAY,
    submittedAt: '2026-11-19T15:30:00.000Z',
    acceptedAt: '2026-11-19T15:30:00.180Z',
    fills: [
      {
        exec: 'XNAS-402777',
        qty: '15',
        price: '178.25',
        commission: '0.075',
        at: '2026-11-19T15:30:00.655Z',
        liquidity: TAKER,
        venue: 'XNAS',
      },
    ],
    unlinked: true,
  },
  {
    key: 'b5',
    trader: 'bob',
    symbol: 'QQQ',
    side: BUY,
    type: LIMIT,
    qty: '5',
    price: '400.00',
    tif: TimeInForce.DAY,
    submittedAt: '2026-11-19T14:35:00.000Z',
    acceptedAt: '2026-11-19T14:35:00.120Z',
    end: { status: OrderStatus.EXPIRED, at: '2026-11-19T21:00:00.000Z', reason: 'Day order not filled by the close' },
  },
  // Carol: a fractional crypto fill with nine decimals, and an order with no venue answer yet.
  {
    key: 'c1',
    trader: 'carol',
    symbol: 'BTC/USD',
    side: BUY,
    type: LIMIT,
    qty: '0.123456789',
    price: '67890.12',
    tif: TimeInForce.GTC,
    submittedAt: '2026-11-20T02:10:00.000Z',
    acceptedAt: '2026-11-20T02:10:00.095Z',
    fills: [
      {
        exec: 'CBSE-5500101',
        qty: '0.1',
        price: '67890.12',
        commission: '1.697253',
        at: '2026-11-20T02:10:04.410Z',
        liquidity: MAKER,
        venue: 'CBSE',
      },
      {
        exec: 'CBSE-5500177',
        qty: '0.023456789',
        price: '67889.995',
        commission: '0.398133',
        at: '2026-11-20T02:11:30.002Z',
        liquidity: MAKER,
        venue: 'CBSE',
      },
    ],
  },
  {
    key: 'c2',
    trader: 'carol',
    symbol: 'SPY',
    side: BUY,
    type: LIMIT,
    qty: '10',
    price: '560.00',
    tif: TimeInForce.DAY,
    submittedAt: '2026-11-20T14:31:00.000Z',
  },
];

const GATEWAY = 'execution-gateway';

interface LogDraft {
  orderId: string;
  traderId: string;
  action: ExecutionLogAction;
  fromStatus: OrderStatus | null;
  toStatus: OrderStatus | null;
  reason?: string | null;
  errorCode?: string | null;
  actor: string;
  details?: JsonObject | null;
  occurredAt: Date;
}

/** TypeORM's insert type cannot follow jsonb columns; the objects here are built field by field above. */
function rows<T>(items: object[]): QueryDeepPartialEntity<T>[] {
  return items as QueryDeepPartialEntity<T>[];
}

export async function hasData(manager: EntityManager): Promise<boolean> {
  const [{ exists }] = (await manager.query('SELECT EXISTS (SELECT 1 FROM "traders") AS "exists"')) as {
    exists: boolean;
  }[];
  return exists;
}

export interface DemoSummary {
  traders: number;
  positions: number;
  orders: number;
  fills: number;
  executionLogs: number;
}

/** Builds the demo set in memory, then writes it in one transaction. Refuses to load it twice. */
export async function loadDemoData(dataSource: DataSource): Promise<DemoSummary> {
  const traders = TRADERS.map((t) => ({
    id: demoId(`trader:${t.key}`),
    name: t.name,
    externalRef: t.externalRef,
    createdAt: new Date('2026-11-02T09:00:00Z'),
  }));
  const traderId = (key: string): string => demoId(`trader:${key}`);

  const orders = new Map<
    string,
    Partial<Order> & { id: string; quantity: Dec; filledQuantity: Dec; status: OrderStatus }
  >();
  const logs: LogDraft[] = [];
  const fills: Partial<Fill>[] = [];
  type DemoPosition = Partial<Position> & { id: string; state: PositionState; averageEntryPrice: Dec };
  const positions: DemoPosition[] = [];
  const openPositions = new Map<string, (typeof positions)[number]>();

  // Orders and their submission / acceptance entries.
  for (const o of ORDERS) {
    const id = demoId(`order:${o.key}`);
    orders.set(o.key, {
      id,
      traderId: traderId(o.trader),
      positionId: null,
      clientOrderId: `demo-${o.key}`,
      symbol: o.symbol,
      side: o.side,
      orderType: o.type,
      timeInForce: o.tif,
      quantity: new Dec(o.qty),
      price: o.price ? new Dec(o.price) : null,
      status: OrderStatus.PENDING,
      baseStatus: OrderStatus.PENDING,
      filledQuantity: new Dec(0),
      averageFillPrice: null,
      source: OrderSource.API,
      createdAt: new Date(o.submittedAt),
      updatedAt: new Date(o.submittedAt),
      submittedAt: new Date(o.submittedAt),
    });
    const base = { orderId: id, traderId: traderId(o.trader) };
    logs.push({
      ...base,
      action: ExecutionLogAction.SUBMITTED,
      fromStatus: null,
      toStatus: OrderStatus.PENDING,
      actor: traderId(o.trader),
      occurredAt: new Date(o.submittedAt),
    });
    if (o.acceptedAt) {
      logs.push({
        ...base,
        action: ExecutionLogAction.ACCEPTED,
        fromStatus: OrderStatus.PENDING,
        toStatus: OrderStatus.ACCEPTED,
        actor: GATEWAY,
        occurredAt: new Date(o.acceptedAt),
      });
      orders.get(o.key)!.status = OrderStatus.ACCEPTED;
      orders.get(o.key)!.baseStatus = OrderStatus.ACCEPTED;
      orders.get(o.key)!.updatedAt = new Date(o.acceptedAt);
    }
  }

  // Fills in execution order across all orders, netted per trader and symbol.
  const allFills = ORDERS.flatMap((o) => (o.fills ?? []).map((f) => ({ o, f }))).sort((x, y) =>
    x.f.at.localeCompare(y.f.at),
  );
  for (const { o, f } of allFills) {
    const order = orders.get(o.key)!;
    const at = new Date(f.at);
    const qty = new Dec(f.qty);
    const fillId = demoId(`fill:${f.exec}`);
    // Every fill is netted into its book (event time); an `unlinked` order just lacks its link.
    const posKey = `${o.trader}|${o.symbol}`;
    const m = contractMultiplier(o.symbol, {});
    const newPosition = (flippedFromId: string | null): DemoPosition => {
      const position: DemoPosition = {
        id: demoId(
          `position:${o.trader}:${o.symbol}:${positions.filter((x) => x.traderId === traderId(o.trader) && x.symbol === o.symbol).length + 1}`,
        ),
        traderId: traderId(o.trader),
        symbol: o.symbol,
        state: FLAT,
        averageEntryPrice: new Dec(0),
        contractMultiplier: m,
        flippedFromId,
        rulesVersion: 2,
        status: PositionStatus.OPEN,
        openedAt: at,
        closedAt: null,
        createdAt: at,
        updatedAt: at,
        version: 1,
      };
      positions.push(position);
      openPositions.set(posKey, position);
      return position;
    };
    let position = openPositions.get(posKey) ?? newPosition(null);
    const step = applyFill(
      position.state,
      {
        signedQuantity: o.side === BUY ? qty : qty.negated(),
        price: new Dec(f.price),
        commission: new Dec(f.commission),
      },
      m,
    );
    position.state = step.state;
    position.updatedAt = at;
    position.version = (position.version ?? 1) + 1;
    if (step.change === 'CLOSE' || step.change === 'FLIP') {
      position.status = PositionStatus.CLOSED;
      position.closedAt = at;
      openPositions.delete(posKey);
    } else {
      position.averageEntryPrice = averageEntryPrice(step.state, m) ?? position.averageEntryPrice;
    }
    if (step.change === 'FLIP') {
      position = newPosition(position.id);
      position.state = step.opened;
      position.averageEntryPrice = averageEntryPrice(step.opened, m)!;
    }
    const positionId = position.id;
    fills.push({
      id: fillId,
      orderId: order.id,
      traderId: order.traderId,
      symbol: order.symbol,
      positionId,
      execId: f.exec,
      quantity: qty,
      price: new Dec(f.price),
      commission: new Dec(f.commission),
      liquidity: f.liquidity ?? null,
      venue: f.venue,
      executedAt: at,
      createdAt: new Date(at.getTime() + 35),
    });
    const from = order.status;
    order.filledQuantity = order.filledQuantity.plus(qty);
    order.fillNotional = (order.fillNotional ?? new Dec(0)).plus(qty.times(new Dec(f.price)));
    order.averageFillPrice = averageFillPrice(
      fills.filter((x) => x.orderId === order.id) as { quantity: Dec; price: Dec }[],
    );
    const complete = order.filledQuantity.eq(order.quantity);
    order.status = complete ? OrderStatus.FILLED : OrderStatus.PARTIAL;
    order.baseStatus = OrderStatus.ACCEPTED;
    order.updatedAt = at;
    if (complete) order.filledAt = at;
    logs.push({
      orderId: order.id,
      traderId: order.traderId!,
      action: complete ? ExecutionLogAction.FILLED : ExecutionLogAction.EXECUTED,
      fromStatus: from,
      toStatus: order.status,
      actor: GATEWAY,
      occurredAt: at,
      details: {
        fillId,
        execId: f.exec,
        quantity: f.qty,
        price: f.price,
        commission: f.commission,
        venue: f.venue,
        positionId,
      },
    });
    if (!o.unlinked && !order.positionId) {
      order.positionId = positionId;
      logs.push({
        orderId: order.id,
        traderId: order.traderId!,
        action: ExecutionLogAction.POSITION_LINKED,
        fromStatus: order.status,
        toStatus: order.status,
        actor: GATEWAY,
        occurredAt: at,
        reason: 'Linked to the position of its first fill',
        details: { previousPositionId: null, positionId },
      });
    }
  }

  // Ends: cancellation, rejection, expiry.
  for (const o of ORDERS) {
    if (!o.end) continue;
    const order = orders.get(o.key)!;
    const at = new Date(o.end.at);
    const action = {
      CANCELLED: ExecutionLogAction.CANCELLED,
      REJECTED: ExecutionLogAction.REJECTED,
      EXPIRED: ExecutionLogAction.EXPIRED,
    }[o.end.status];
    logs.push({
      orderId: order.id,
      traderId: order.traderId!,
      action,
      fromStatus: order.status,
      toStatus: o.end.status,
      reason: o.end.reason,
      errorCode: o.end.errorCode ?? null,
      actor: o.end.status === OrderStatus.CANCELLED ? order.traderId! : GATEWAY,
      occurredAt: at,
    });
    order.status = o.end.status;
    order.baseStatus = o.end.status;
    order.updatedAt = at;
    if (o.end.status === OrderStatus.CANCELLED) order.canceledAt = at;
    if (o.end.status === OrderStatus.EXPIRED) order.expiredAt = at;
  }

  return dataSource.transaction(async (m) => {
    // Row-level security is forced on every table: load as an admin (a superuser bypasses it anyway).
    await m.query(`SET LOCAL tradetrail.role = 'admin'`);
    const [{ exists }] = (await m.query('SELECT EXISTS (SELECT 1 FROM "traders" WHERE "id" = $1) AS "exists"', [
      traders[0].id,
    ])) as { exists: boolean }[];
    if (exists) throw new Error('The demo data is already loaded in this database.');
    await m.insert(Trader, traders);
    await m.insert(Position, rows<Position>(positions.map(({ state, ...p }) => ({ ...p, ...state }))));
    await m.insert(Order, rows<Order>([...orders.values()]));
    await m.insert(Fill, rows<Fill>(fills));
    // One by one, in event order: the database numbers and chains each order's entries; the server
    // seals each (as every entry it writes).
    logs.sort((x, y) => x.occurredAt.getTime() - y.occurredAt.getTime());
    for (const { actor, ...entry } of logs) await appendLogs(m, { actor, source: 'API' }, [entry]);
    return {
      traders: traders.length,
      positions: positions.length,
      orders: orders.size,
      fills: fills.length,
      executionLogs: logs.length,
    };
  });
}
