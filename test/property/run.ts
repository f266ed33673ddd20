import { randomBytes } from 'node:crypto';
import { type CanonicalEntry, canonicalColumnsSql } from '../../src/execution-log/entry-encoding';
import { orderAgainstLog } from '../../src/execution-log/log-verification.service';
import { makeTraders } from '../factories';
import { ADMIN, SERVICE, type TestApp } from '../harness';
import {
  D,
  type FillException,
  type FillOut,
  type ModelResult,
  type OrderOut,
  type PositionOut,
  bookKey,
  cashFlows,
  runModel,
  text,
} from './model';
import {
  COUNTED_ACTIONS,
  type CountedAction,
  type Expected,
  type ScEvent,
  type ScFill,
  type Scenario,
  effectiveFills,
  expectedLogCounts,
  expectedOutcome,
  modelInput,
  shrink,
  traderName,
} from './scenario';

/**
 * Runs a scenario against a real app over GraphQL: every delivery plan with fresh traders (SERVICE
 * writes), then a canonical snapshot of each (ADMIN reads), compared across plans, with the model,
 * with the cash-flow rule, and with recalculateBook.
 */

// ---------------------------------------------------------------------------------------------
// Canonical snapshot: nothing in it names an id, a run or an arrival.

export interface FillSnap extends FillOut {
  quantity: string;
  price: string;
  commission: string;
  effectiveQuantity: string;
  /** Left out (null) for busted fills: the contract only fixes their quantity (0). */
  effectivePrice: string | null;
  effectiveCommission: string | null;
  busted: boolean;
  /** Kinds of the fill's corrections, in their order. */
  corrections: string[];
}

export interface OrderSnap extends OrderOut {
  /** Counts of the log actions that do not depend on the delivery order (zero counts left out). */
  logs: Partial<Record<CountedAction, number>>;
  /** Arrival entries (EXECUTED, FILLED or EXCEPTION with details.event ARRIVAL) per fill key: one each. */
  arrivals: Record<string, number>;
}

export interface Snapshot {
  books: Record<string, PositionOut[]>;
  fills: Record<string, FillSnap>;
  orders: Record<string, OrderSnap>;
}

export type FailureKind = 'crash' | 'response' | 'ordering' | 'model' | 'cash' | 'recalc' | 'log';
export interface Failure {
  kind: FailureKind;
  message: string;
}

// ---------------------------------------------------------------------------------------------
// GraphQL literals (inline arguments keep aliased operations simple)

class Enum {
  constructor(readonly name: string) {}
}
const enumValue = (name: string): Enum => new Enum(name);

function literal(v: unknown): string {
  if (v instanceof Enum) return v.name;
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(literal).join(', ')}]`;
  const fields = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  return `{${fields.map(([k, x]) => `${k}: ${literal(x)}`).join(', ')}}`;
}

const MAX_ALIASES = 15;

type GqlResult = Awaited<ReturnType<TestApp['run']>>;

async function ok(app: TestApp, query: string, principal = SERVICE): Promise<Record<string, any>> {
  const res = await app.run(query, undefined, principal);
  if (res.errors?.length) throw new Error(`${query.slice(0, 300)}\n-> ${JSON.stringify(res.errors).slice(0, 2000)}`);
  return res.data as Record<string, any>;
}

let runNo = 0;

// ---------------------------------------------------------------------------------------------
// One delivery plan

interface PlanRun {
  snapshot: Snapshot;
  failures: Failure[];
}

async function runPlan(app: TestApp, sc: Scenario, planIndex: number, recalc: boolean): Promise<PlanRun> {
  const failures: Failure[] = [];
  const tag = `${process.pid.toString(36)}${(runNo++).toString(36)}${randomBytes(2).toString('hex')}`;
  const traders = (await makeTraders(app.dataSource.manager, sc.traders)).map((t) => t.id);
  const orderOf = new Map(sc.orders.map((o) => [o.key, o]));
  const ids = new Map<string, string>();

  // Orders and their life before any fill, in aliased chunks (an op waits for the ids it needs).
  let chunk: { alias: string; field: string; key?: string }[] = [];
  const flush = async (): Promise<void> => {
    if (chunk.length === 0) return;
    const data = await ok(app, `mutation { ${chunk.map((c) => `${c.alias}: ${c.field} { id }`).join(' ')} }`);
    for (const c of chunk) if (c.key) ids.set(c.key, data[c.alias].id);
    chunk = [];
  };
  for (const [i, s] of sc.setup.entries()) {
    if (s.op !== 'submit' && !ids.has(s.order)) await flush();
    if (chunk.length >= MAX_ALIASES) await flush();
    const alias = `s${i}`;
    if (s.op === 'submit') {
      const o = orderOf.get(s.order)!;
      const input = {
        traderId: traders[o.trader],
        clientOrderId: o.key,
        symbol: o.symbol,
        side: enumValue(o.side),
        orderType: enumValue('MARKET'),
        quantity: o.quantity,
      };
      chunk.push({ alias, field: `submitOrder(input: ${literal(input)})`, key: o.key });
    } else if (s.op === 'replace') {
      const by = orderOf.get(s.by)!;
      const input = { clientOrderId: by.key, quantity: by.quantity };
      chunk.push({
        alias,
        field: `replaceOrder(orderId: "${ids.get(s.order)}", input: ${literal(input)})`,
        key: by.key,
      });
    } else {
      const field = { accept: 'acceptOrder', cancel: 'cancelOrder', expire: 'expireOrder', reject: 'rejectOrder' }[
        s.op
      ];
      const extra = s.op === 'reject' ? ', reason: "property test"' : '';
      chunk.push({ alias, field: `${field}(orderId: "${ids.get(s.order)}"${extra})` });
    }
  }
  await flush();

  // Deliveries.
  const fillOf = new Map(sc.fills.map((f) => [f.key, f]));
  const eventOf = new Map(sc.events.map((e) => [e.id, e]));
  const execId = (f: ScFill): string => `${tag}.${f.execId}`;
  const executionInput = (e: ScEvent): Record<string, unknown> => {
    const f = fillOf.get((e as { fill: string }).fill)!;
    const change = e.kind === 'replay' ? e.change : {};
    const commission = change.commission ?? f.commission;
    const send = change.sendCommission ?? f.sendCommission;
    return {
      orderId: ids.get(change.order ?? f.order),
      execId: execId(f),
      venue: f.venue ?? undefined,
      quantity: change.quantity ?? f.quantity,
      price: change.price ?? f.price,
      commission: send || commission !== '0' ? commission : undefined,
      executedAt: new Date(change.executedAt ?? f.executedAt).toISOString(),
    };
  };
  const correctionField = (e: ScEvent): string => {
    if (e.kind === 'correctionReplay') return correctionField(eventOf.get(e.of)!);
    if (e.kind === 'correct') {
      const f = fillOf.get(e.fill)!;
      const input = {
        correctionId: `${tag}.${e.correctionId}`,
        execId: execId(f),
        venue: f.venue ?? undefined,
        quantity: e.quantity,
        price: e.price,
        commission: e.commission,
        reason: 'property test correction',
      };
      return `correctExecution(input: ${literal(input)})`;
    }
    if (e.kind === 'bust') {
      const f = fillOf.get(e.fill)!;
      const input = {
        correctionId: `${tag}.${e.correctionId}`,
        execId: execId(f),
        venue: f.venue ?? undefined,
        reason: 'property test bust',
      };
      return `bustExecution(input: ${literal(input)})`;
    }
    throw new Error(`event ${e.id} is not a correction`);
  };
  const describe = (e: ScEvent): string => {
    switch (e.kind) {
      case 'fill':
        return `fill ${e.fill}`;
      case 'replay':
        return `${e.conflict ? 'conflicting' : 'exact'} replay of ${e.fill} ${JSON.stringify(e.change)}`;
      case 'correct':
        return `correction ${e.correctionId} of ${e.fill}`;
      case 'bust':
        return `bust ${e.correctionId} of ${e.fill}`;
      case 'correctionReplay':
        return `replay of ${describe(eventOf.get(e.of)!)}`;
    }
  };
  const check = (e: ScEvent, actual: string, callNo: number): void => {
    const expected: Expected = expectedOutcome(e);
    const got = actual.split(' ')[0];
    if (got !== expected)
      failures.push({
        kind: 'response',
        message: `plan ${planIndex} call ${callNo}: event ${e.id} (${describe(e)}): expected ${expected}, got ${actual}`,
      });
  };
  const outcomeOf = (res: GqlResult, field: string): string => {
    if (res.errors?.length) {
      const code = String(res.errors[0].extensions?.code ?? 'ERROR');
      return `${code} ${res.errors[0].message}`;
    }
    const r = (res.data as Record<string, any>)[field];
    if (r.status === 'REFUSED') return `${r.error?.code ?? 'REFUSED'} ${r.error?.message ?? ''}`;
    return String(r.status);
  };

  const plan = sc.plans[planIndex];
  for (const [callNo, call] of plan.calls.entries()) {
    const events = call.events.map((id) => eventOf.get(id)!);
    const first = events[0];
    if (first.kind === 'fill' || first.kind === 'replay') {
      if (call.kind === 'single') {
        const res = await app.run(
          `mutation { recordExecution(input: ${literal(executionInput(first))}) { status error { code message } } }`,
          undefined,
          SERVICE,
        );
        check(first, outcomeOf(res, 'recordExecution'), callNo);
      } else {
        const res = await app.run(
          `mutation { recordExecutions(inputs: ${literal(events.map(executionInput))}) { results { index status error { code message } } } }`,
          undefined,
          SERVICE,
        );
        if (res.errors?.length) {
          for (const e of events) check(e, outcomeOf(res, 'recordExecutions'), callNo);
        } else {
          const results = (res.data as Record<string, any>).recordExecutions.results as any[];
          events.forEach((e, i) => {
            const r = results.find((x) => x.index === i);
            check(
              e,
              !r ? 'MISSING' : r.status === 'REFUSED' ? `${r.error?.code} ${r.error?.message}` : r.status,
              callNo,
            );
          });
        }
      }
    } else {
      const field = correctionField(first);
      const name = field.slice(0, field.indexOf('('));
      const res = await app.run(`mutation { ${field} { status } }`, undefined, SERVICE);
      check(first, outcomeOf(res, name), callNo);
    }
  }

  const snapshot = await readSnapshot(app, sc, tag, traders, ids);
  // Recomputing every book afterwards must change nothing.
  if (recalc)
    for (const message of await recalcProblems(app, sc, planIndex, traders)) failures.push({ kind: 'recalc', message });
  for (const message of await orderLogProblems(app, planIndex, traders)) failures.push({ kind: 'log', message });
  return { snapshot, failures };
}

// ---------------------------------------------------------------------------------------------
// Reading back

const POSITION_FIELDS = `id symbol quantity costBasis averageEntryPrice realizedPnl totalCommission status openedAt closedAt flippedFromId flippedTo { id }`;
const FILL_FIELDS = `id execId venue orderId positionId quantity price commission effectiveQuantity effectivePrice
  effectiveCommission busted exception overfilledQuantity executedAt corrections { kind }`;
const ORDER_FIELDS = `id clientOrderId status filledQuantity overfilledQuantity averageFillPrice positionId
  executionLogs { action details }`;

const ARRIVAL_ACTIONS = new Set(['EXECUTED', 'FILLED', 'EXCEPTION']);

/**
 * The link of an order whose fills were all busted is "null/unchanged" in the contract, so either is
 * right and "unchanged" depends on what the link was before: it is left out of the comparison.
 */
const ALL_BUSTED = -9;
function ordersWithOnlyBustedFills(sc: Scenario): Set<string> {
  const eff = effectiveFills(sc);
  const out = new Set<string>();
  for (const o of sc.orders) {
    const fills = sc.fills.filter((f) => f.order === o.key);
    if (fills.length > 0 && fills.every((f) => eff.get(f.key)!.busted)) out.add(o.key);
  }
  return out;
}

async function readSnapshot(
  app: TestApp,
  sc: Scenario,
  tag: string,
  traders: string[],
  ids: Map<string, string>,
): Promise<Snapshot> {
  const fields = traders.flatMap((t, i) => [
    `p${i}: positions(first: 100, filter: { traderId: "${t}" }) { edges { node { ${POSITION_FIELDS} } } }`,
    `f${i}: fills(first: 100, filter: { traderId: "${t}" }) { edges { node { ${FILL_FIELDS} } } }`,
    `o${i}: orders(first: 100, filter: { traderId: "${t}" }) { edges { node { ${ORDER_FIELDS} } } }`,
  ]);
  const data = await ok(app, `query { ${fields.join('\n')} }`, ADMIN);
  const nodes = (prefix: string): any[] =>
    traders.flatMap((_, i) => (data[`${prefix}${i}`].edges as any[]).map((e) => ({ ...e.node, trader: i })));
  const positions = nodes('p');
  const fills = nodes('f');
  const orders = nodes('o');

  const orderKey = new Map([...ids].map(([k, id]) => [id, k]));
  const fillKey = new Map(sc.fills.map((f) => [`${tag}.${f.execId}|${f.venue ?? ''}`, f.key]));
  const keyOfFill = (f: any): string => fillKey.get(`${f.execId}|${f.venue ?? ''}`) ?? `unknown:${f.execId}`;
  const fillKeyById = new Map(fills.map((f) => [f.id, keyOfFill(f)]));

  // Positions per book, by opening time (distinct within a book: event times are).
  const snapshot: Snapshot = { books: {}, fills: {}, orders: {} };
  const where = new Map<string, number>();
  const perBook = new Map<string, any[]>();
  for (const o of sc.orders) perBook.set(bookKey(traderName(o.trader), o.symbol), []);
  for (const p of positions) {
    const k = bookKey(traderName(p.trader), p.symbol);
    if (!perBook.has(k)) perBook.set(k, []);
    perBook.get(k)!.push(p);
  }
  for (const [k, list] of [...perBook].sort(([a], [b]) => (a < b ? -1 : 1))) {
    list.sort(
      (a, b) =>
        Date.parse(a.openedAt) - Date.parse(b.openedAt) || (a.status === b.status ? 0 : a.status === 'CLOSED' ? -1 : 1),
    );
    list.forEach((p, i) => where.set(p.id, i));
    snapshot.books[k] = list.map((p) => ({
      quantity: p.quantity,
      costBasis: p.costBasis,
      averageEntryPrice: p.averageEntryPrice,
      realizedPnl: p.realizedPnl,
      totalCommission: p.totalCommission,
      status: p.status,
      openedAt: new Date(p.openedAt).toISOString(),
      closedAt: p.closedAt === null ? null : new Date(p.closedAt).toISOString(),
      flippedFrom: p.flippedFromId === null ? null : (where.get(p.flippedFromId) ?? -1),
      flippedTo: p.flippedTo ? (where.get(p.flippedTo.id) ?? -1) : null,
    }));
    // Both links must agree: a successor names its predecessor, which names it back (-2 when not).
    snapshot.books[k].forEach((p, i) => {
      if (p.flippedFrom !== null && p.flippedFrom >= 0 && snapshot.books[k][p.flippedFrom].flippedTo !== i)
        snapshot.books[k][p.flippedFrom].flippedTo = -2;
    });
  }
  const positionIndex = (id: string | null): number | null => (id === null ? null : (where.get(id) ?? -1));

  for (const f of fills) {
    const busted = Boolean(f.busted);
    snapshot.fills[keyOfFill(f)] = {
      position: positionIndex(f.positionId),
      exception: (f.exception ?? null) as FillException | null,
      overfilledQuantity: f.overfilledQuantity ?? '0',
      quantity: f.quantity,
      price: f.price,
      commission: f.commission,
      effectiveQuantity: f.effectiveQuantity,
      effectivePrice: busted ? null : f.effectivePrice,
      effectiveCommission: busted ? null : f.effectiveCommission,
      busted,
      corrections: (f.corrections as { kind: string }[]).map((c) => c.kind),
    };
  }

  const allBusted = ordersWithOnlyBustedFills(sc);
  for (const o of orders) {
    const key = orderKey.get(o.id) ?? `unknown:${o.clientOrderId}`;
    const logs: Partial<Record<CountedAction, number>> = {};
    const arrivals: Record<string, number> = {};
    for (const l of o.executionLogs as { action: string; details: Record<string, unknown> | null }[]) {
      if ((COUNTED_ACTIONS as readonly string[]).includes(l.action))
        logs[l.action as CountedAction] = (logs[l.action as CountedAction] ?? 0) + 1;
      // A fill's arrival entry (other entries written at arrival, such as POSITION_LINKED, may say ARRIVAL too).
      if (l.details?.event !== 'ARRIVAL' || !ARRIVAL_ACTIONS.has(l.action)) continue;
      const fk = fillKeyById.get(String(l.details.fillId)) ?? 'unknown-fill';
      arrivals[fk] = (arrivals[fk] ?? 0) + 1;
    }
    snapshot.orders[key] = {
      status: o.status,
      filledQuantity: o.filledQuantity,
      overfilledQuantity: o.overfilledQuantity ?? '0',
      averageFillPrice: o.averageFillPrice ?? null,
      position: allBusted.has(key) ? ALL_BUSTED : positionIndex(o.positionId),
      logs,
      arrivals,
    };
  }
  return sortKeys(snapshot);
}

// ---------------------------------------------------------------------------------------------
// What the snapshot must be

export function expectedSnapshot(sc: Scenario, model: ModelResult = runModel(modelInput(sc))): Snapshot {
  const eff = effectiveFills(sc);
  const counts = expectedLogCounts(sc);
  const snapshot: Snapshot = { books: model.books, fills: {}, orders: {} };
  const kinds = new Map<string, string[]>(sc.fills.map((f) => [f.key, []]));
  for (const e of sc.events) {
    if (e.kind === 'correct') kinds.get(e.fill)!.push('CORRECTION');
    if (e.kind === 'bust') kinds.get(e.fill)!.push('BUST');
  }
  for (const f of sc.fills) {
    const e = eff.get(f.key)!;
    snapshot.fills[f.key] = {
      ...model.fills[f.key],
      quantity: text(new D(f.quantity)),
      price: text(new D(f.price)),
      commission: text(new D(f.commission)),
      effectiveQuantity: e.busted ? '0' : e.quantity,
      effectivePrice: e.busted ? null : e.price,
      effectiveCommission: e.busted ? null : e.commission,
      busted: e.busted,
      corrections: kinds.get(f.key)!,
    };
  }
  const allBusted = ordersWithOnlyBustedFills(sc);
  for (const o of sc.orders) {
    const arrivals: Record<string, number> = {};
    for (const f of sc.fills) if (f.order === o.key) arrivals[f.key] = 1;
    const position = allBusted.has(o.key) ? ALL_BUSTED : model.orders[o.key].position;
    snapshot.orders[o.key] = { ...model.orders[o.key], position, logs: counts[o.key] ?? {}, arrivals };
  }
  return sortKeys(snapshot);
}

// ---------------------------------------------------------------------------------------------
// Comparing

function sortKeys<T>(v: T): T {
  if (Array.isArray(v)) return v.map(sortKeys) as T;
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    ) as T;
  }
  return v;
}

/** The paths where two JSON values differ, as "path: a ≠ b" lines. */
export function diff(a: unknown, b: unknown, path = '', out: string[] = []): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return out;
  if (a && b && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of [...keys].sort())
      diff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`, out);
    return out;
  }
  out.push(`${path || '.'}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`);
  return out;
}

function cashProblems(sc: Scenario, snap: Snapshot, planIndex: number): string[] {
  const problems: string[] = [];
  const sideOf = new Map(sc.orders.map((o) => [o.key, o.side]));
  const bookOfFill = new Map(
    sc.fills.map((f) => {
      const o = sc.orders.find((x) => x.key === f.order)!;
      return [f.key, bookKey(traderName(o.trader), o.symbol)];
    }),
  );
  const timeOf = new Map(sc.fills.map((f) => [f.key, new Date(f.executedAt).toISOString()]));
  for (const [book, positions] of Object.entries(snap.books)) {
    const symbol = book.slice(book.indexOf('/') + 1);
    const fills = Object.entries(snap.fills)
      .filter(([k, f]) => bookOfFill.get(k) === book && !f.busted && f.position !== null && f.position >= 0)
      .map(([k, f]) => ({
        position: f.position,
        side: sideOf.get(sc.fills.find((x) => x.key === k)!.order)!,
        quantity: f.effectiveQuantity,
        price: f.effectivePrice ?? '0',
        executedAt: timeOf.get(k)!,
      }));
    let flows: ReturnType<typeof cashFlows>;
    try {
      flows = cashFlows(positions, fills, sc.symbols[symbol] ?? 1);
    } catch (error) {
      problems.push(`plan ${planIndex} ${book}: ${(error as Error).message}`);
      continue;
    }
    positions.forEach((p, i) => {
      if (!new D(p.quantity).equals(flows.net[i]))
        problems.push(
          `plan ${planIndex} ${book} position ${i}: quantity ${p.quantity} but its fills net ${text(flows.net[i])}`,
        );
      if (p.status === 'CLOSED' && !new D(p.realizedPnl).equals(flows.cash[i]))
        problems.push(
          `plan ${planIndex} ${book} position ${i} (CLOSED): realizedPnl ${p.realizedPnl} but its exact cash flow is ${text(flows.cash[i])}`,
        );
    });
  }
  return problems;
}

/** Issue 8: every order's state agrees with its log (the check verifyExecutionLog makes), in two statements. */
async function orderLogProblems(app: TestApp, planIndex: number, traders: string[]): Promise<string[]> {
  return app.dataSource.transaction(async (m) => {
    await m.query(`SET LOCAL tradetrail.role = 'compliance'`);
    const orders = (await m.query(
      `SELECT id, status, filled_quantity::text AS filled, overfilled_quantity::text AS overfilled
       FROM orders WHERE trader_id = ANY($1::uuid[])`,
      [traders],
    )) as { id: string; status: string; filled: string; overfilled: string }[];
    const entries = (await m.query(
      `SELECT ${canonicalColumnsSql('l')} FROM execution_logs l WHERE trader_id = ANY($1::uuid[]) ORDER BY order_id, seq`,
      [traders],
    )) as CanonicalEntry[];
    const byOrder = new Map<string, CanonicalEntry[]>();
    for (const e of entries) byOrder.set(e.orderId, [...(byOrder.get(e.orderId) ?? []), e]);
    return orders.flatMap((o) =>
      orderAgainstLog(o, byOrder.get(o.id) ?? []).map((p) => `plan ${planIndex} order ${o.id}: ${p.message}`),
    );
  });
}

async function recalcProblems(app: TestApp, sc: Scenario, planIndex: number, traders: string[]): Promise<string[]> {
  const books = [...new Set(sc.orders.map((o) => `${o.trader}\u0000${o.symbol}`))].map((k) => k.split('\u0000'));
  const problems: string[] = [];
  for (let i = 0; i < books.length; i += MAX_ALIASES) {
    const part = books.slice(i, i + MAX_ALIASES);
    const data = await ok(
      app,
      `mutation { ${part
        .map(
          ([t, s], j) =>
            `b${j}: recalculateBook(traderId: "${traders[Number(t)]}", symbol: ${JSON.stringify(s)}) { changed }`,
        )
        .join(' ')} }`,
      ADMIN,
    );
    part.forEach(([t, s], j) => {
      if (data[`b${j}`].changed !== false)
        problems.push(`plan ${planIndex}: recalculateBook(${traderName(Number(t))}, ${s}) changed the book`);
    });
  }
  return problems;
}

/** Runs every plan of the scenario and checks it; an empty list means it passed. */
export async function checkScenario(
  app: TestApp,
  sc: Scenario,
  options: { recalc?: boolean; parallel?: boolean } = {},
): Promise<Failure[]> {
  const failures: Failure[] = [];
  let expected: Snapshot;
  try {
    expected = expectedSnapshot(sc);
  } catch (error) {
    return [{ kind: 'crash', message: `the model failed: ${(error as Error).stack}` }];
  }
  // Plans use traders of their own, so they may run side by side (each plan's calls stay in sequence).
  const one = (p: number): Promise<PlanRun | Error> =>
    runPlan(app, sc, p, options.recalc !== false).catch((error: unknown) => error as Error);
  const runs: (PlanRun | Error)[] = [];
  if (options.parallel === false) for (let p = 0; p < sc.plans.length; p++) runs.push(await one(p));
  else runs.push(...(await Promise.all(sc.plans.map((_, p) => one(p)))));
  const snapshots: Snapshot[] = [];
  for (const [p, run] of runs.entries()) {
    if (run instanceof Error) {
      failures.push({ kind: 'crash', message: `plan ${p}: ${run.message}` });
      return failures;
    }
    failures.push(...run.failures);
    snapshots.push(run.snapshot);
    for (const message of cashProblems(sc, run.snapshot, p)) failures.push({ kind: 'cash', message });
  }
  for (let p = 1; p < snapshots.length; p++) {
    const d = diff(snapshots[0], snapshots[p]);
    if (d.length)
      failures.push({ kind: 'ordering', message: `plan 0 ≠ plan ${p}:\n    ${d.slice(0, 25).join('\n    ')}` });
  }
  if (snapshots.length > 0) {
    const d = diff(expected, snapshots[0]);
    if (d.length)
      failures.push({ kind: 'model', message: `model ≠ plan 0 (model first):\n    ${d.slice(0, 25).join('\n    ')}` });
  }
  return failures;
}

/** A failure report: the seed, what failed, and the smallest failing scenario as JSON. */
export function report(
  seed: number,
  failures: Failure[],
  shrunk?: { scenario: Scenario; failures: Failure[] },
): string {
  const lines = [`Scenario seed ${seed} failed:`, ...failures.slice(0, 10).map((f) => `  [${f.kind}] ${f.message}`)];
  if (failures.length > 10) lines.push(`  … and ${failures.length - 10} more`);
  if (shrunk) {
    lines.push(
      `Smallest failing scenario found (${shrunk.scenario.orders.length} orders, ${shrunk.scenario.fills.length} fills, ${shrunk.scenario.events.length} events):`,
      ...shrunk.failures.slice(0, 10).map((f) => `  [${f.kind}] ${f.message}`),
      JSON.stringify(compact(shrunk.scenario)),
    );
  }
  return lines.join('\n');
}

/** Shrinks a failing scenario, keeping only candidates that fail the same way (same kind of first failure). */
export async function shrinkFailure(
  app: TestApp,
  sc: Scenario,
  failures: Failure[],
  options: { deadline?: number; attempts?: number; log?: (line: string) => void } = {},
): Promise<{ scenario: Scenario; failures: Failure[] }> {
  const kind = failures[0].kind;
  let last = failures;
  const scenario = await shrink(
    sc,
    async (candidate) => {
      const f = await checkScenario(app, candidate);
      if (f.some((x) => x.kind === kind)) {
        last = f;
        return true;
      }
      return false;
    },
    options,
  );
  return { scenario, failures: scenario === sc ? failures : last };
}

/** Shrunk scenarios print without the symbols they no longer use. */
export function compact(sc: Scenario): Scenario {
  const used = new Set(sc.orders.map((o) => o.symbol));
  return { ...sc, symbols: Object.fromEntries(Object.entries(sc.symbols).filter(([s]) => used.has(s))) };
}

export interface SeedFailure {
  seed: number;
  scenario: Scenario;
  failures: Failure[];
}

/**
 * Checks the scenarios of these seeds, `concurrency` at a time (each on traders of its own). Stops
 * starting new ones after the first failure unless `keepGoing`.
 */
export async function runSeeds(
  app: TestApp,
  seeds: number[],
  options: {
    generate: (seed: number) => Scenario;
    concurrency?: number;
    keepGoing?: boolean;
    onResult?: (seed: number, failures: Failure[], done: number) => void;
  },
): Promise<SeedFailure[]> {
  const failed: SeedFailure[] = [];
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < seeds.length && (options.keepGoing || failed.length === 0)) {
      const seed = seeds[next++];
      const scenario = options.generate(seed);
      const failures = await checkScenario(app, scenario);
      done += 1;
      if (failures.length > 0) failed.push({ seed, scenario, failures });
      options.onResult?.(seed, failures, done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 1) }, worker));
  return failed.sort((a, b) => a.seed - b.seed);
}
