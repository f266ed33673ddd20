import type { EntityManager } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import { Dec } from '../src/decimal';
import { ExecutionLog, ExecutionLogAction } from '../src/execution-log/execution-log.entity';
import { Fill } from '../src/fill/fill.entity';
import { Order, OrderSide, OrderStatus, OrderType } from '../src/order/order.entity';
import { Position, PositionStatus } from '../src/position/position.entity';
import { Trader } from '../src/trader/trader.entity';

/** Tiny factories: each inserts rows with sensible defaults and returns them with their ids. */
let n = 0;
const next = (): number => ++n;

async function insert<T extends object>(m: EntityManager, entity: new () => T, rows: Partial<T>[]): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < rows.length; i += 1000) {
    const chunk = rows.slice(i, i + 1000);
    const result = await m.insert(entity, chunk as QueryDeepPartialEntity<T>[]);
    chunk.forEach((row, j) => out.push({ ...row, ...result.identifiers[j] } as T));
  }
  return out;
}

export async function makeTraders(m: EntityManager, count: number, over: Partial<Trader> = {}): Promise<Trader[]> {
  return insert(
    m,
    Trader,
    Array.from({ length: count }, () => ({ name: `Trader ${next()}`, ...over })),
  );
}
export async function makeTrader(m: EntityManager, over: Partial<Trader> = {}): Promise<Trader> {
  return (await makeTraders(m, 1, over))[0];
}

export async function makePositions(m: EntityManager, rows: Partial<Position>[]): Promise<Position[]> {
  return insert(
    m,
    Position,
    rows.map((r) => ({ symbol: `SYM${next()}`, quantity: new Dec(0), status: PositionStatus.OPEN, ...r })),
  );
}
export async function makePosition(
  m: EntityManager,
  over: Partial<Position> & { traderId: string },
): Promise<Position> {
  return (await makePositions(m, [over]))[0];
}

export async function makeOrders(m: EntityManager, rows: (Partial<Order> & { traderId: string })[]): Promise<Order[]> {
  return insert(
    m,
    Order,
    rows.map((r) => ({
      clientOrderId: `c-${next()}`,
      symbol: 'AAPL',
      side: OrderSide.BUY,
      orderType: OrderType.MARKET,
      quantity: new Dec(10),
      status: OrderStatus.ACCEPTED,
      filledQuantity: new Dec(0),
      ...r,
    })),
  );
}
export async function makeOrder(m: EntityManager, over: Partial<Order> & { traderId: string }): Promise<Order> {
  return (await makeOrders(m, [over]))[0];
}

export async function makeFills(m: EntityManager, rows: (Partial<Fill> & { orderId: string })[]): Promise<Fill[]> {
  // A fill carries its order's book (trader, symbol).
  const books = new Map(
    (
      (await m.query(`SELECT id, trader_id, symbol FROM orders WHERE id = ANY($1::uuid[])`, [
        [...new Set(rows.map((r) => r.orderId))],
      ])) as { id: string; trader_id: string; symbol: string }[]
    ).map((o) => [o.id, { traderId: o.trader_id, symbol: o.symbol }]),
  );
  return insert(
    m,
    Fill,
    rows.map((r) => ({
      ...books.get(r.orderId),
      execId: `x-${next()}`,
      quantity: new Dec(1),
      price: new Dec(100),
      executedAt: new Date(),
      ...r,
    })),
  );
}

export async function makeLogs(
  m: EntityManager,
  rows: (Partial<ExecutionLog> & { orderId: string; traderId: string })[],
): Promise<ExecutionLog[]> {
  return insert(
    m,
    ExecutionLog,
    rows.map((r) => ({
      action: ExecutionLogAction.SUBMITTED,
      actor: 'test',
      source: 'API',
      occurredAt: new Date(),
      ...r,
    })),
  );
}
