import type { EntityManager } from 'typeorm';
import type { Dec } from '../decimal';
import { BadUserInputError, ConflictError, NotFoundError } from '../errors';
import { newId } from '../ids';
import { ExecutionLogAction } from '../execution-log/execution-log.entity';
import type { Actor } from '../execution-log/execution-log.service';
import { Order } from '../order/order.entity';
import {
  bookChangeJson,
  LedgerWrites,
  loadLedgerFills,
  lockBooks,
  replayBook,
  replayEntries,
} from '../position/book.service';
import { hydrate } from '../request-db';
import { FillCorrection, FillCorrectionKind } from './fill-correction.entity';

export interface CorrectionRequest {
  correctionId: string;
  execId: string;
  venue?: string | null;
  kind: FillCorrectionKind;
  quantity?: Dec | null;
  price?: Dec | null;
  commission?: Dec | null;
  reason: string;
}

export interface CorrectionOutcome {
  status: 'APPLIED' | 'DUPLICATE';
  correction: FillCorrection;
  fillId: string;
  order: Order;
}

const text = (v: Dec | null | undefined): string | null => (v == null ? null : v.toFixed());

/**
 * A trade correction or bust (FIX ExecType G / H, DOMAIN.md §4), idempotent on the caller's
 * correctionId: an immutable record pointing at the fill (which never changes), the order's totals
 * and status recomputed from its effective fills (a bust can take FILLED back), the book replayed
 * from the fill's position, CORRECTED or BUSTED logged with the old and new values.
 */
export async function correctExecution(
  m: EntityManager,
  who: Actor,
  req: CorrectionRequest,
): Promise<CorrectionOutcome> {
  if (
    req.kind === FillCorrectionKind.CORRECTION &&
    req.quantity == null &&
    req.price == null &&
    req.commission == null
  ) {
    throw new BadUserInputError('A correction needs a new quantity, price or commission (at least one).', {
      field: 'quantity',
    });
  }
  const venueText = req.venue ? `venue ${req.venue}` : 'no venue';
  const [ref] = (await m.query(
    `SELECT id, order_id, trader_id, symbol FROM fills WHERE coalesce(venue, '') = $1 AND exec_id = $2`,
    [req.venue ?? '', req.execId],
  )) as { id: string; order_id: string; trader_id: string; symbol: string }[];
  if (!ref) throw new NotFoundError(`No execution ${req.execId} (${venueText}) is recorded.`);
  await lockBooks(m, [{ traderId: ref.trader_id, symbol: ref.symbol }]);
  const [orderRow] = (await m.query(`SELECT * FROM orders WHERE id = $1 FOR NO KEY UPDATE`, [ref.order_id])) as Record<
    string,
    unknown
  >[];
  const order = hydrate(m, Order, orderRow);

  const [previous] = (await m.query(`SELECT * FROM fill_corrections WHERE correction_id = $1`, [
    req.correctionId,
  ])) as Record<string, unknown>[];
  if (previous) {
    const p = hydrate(m, FillCorrection, previous);
    const same =
      p.fillId === ref.id &&
      p.kind === req.kind &&
      text(p.quantity) ===
        (req.kind === FillCorrectionKind.BUST ? null : (text(req.quantity) ?? text(p.previousQuantity))) &&
      text(p.price) === (req.kind === FillCorrectionKind.BUST ? null : (text(req.price) ?? text(p.previousPrice))) &&
      text(p.commission) ===
        (req.kind === FillCorrectionKind.BUST ? null : (text(req.commission) ?? text(p.previousCommission)));
    if (!same) {
      throw new ConflictError(
        `correctionId "${req.correctionId}" is already used by another ${p.kind === FillCorrectionKind.BUST ? 'bust' : 'correction'} ` +
          `(of fill ${p.fillId}); a retry must repeat it exactly.`,
        { correctionId: req.correctionId },
      );
    }
    return { status: 'DUPLICATE', correction: p, fillId: ref.id, order };
  }

  const [fill] = await loadLedgerFills(m, `f.id = $1`, [ref.id]);
  if (fill.busted) {
    throw new ConflictError(
      `Execution ${req.execId} (${venueText}) is busted; a busted execution cannot be corrected or busted again.`,
    );
  }
  const bust = req.kind === FillCorrectionKind.BUST;
  const next = {
    quantity: bust ? fill.quantity : (req.quantity ?? fill.quantity),
    price: bust ? fill.price : (req.price ?? fill.price),
    commission: bust ? fill.commission : (req.commission ?? fill.commission),
  };
  if (!bust && next.quantity.eq(fill.quantity) && next.price.eq(fill.price) && next.commission.eq(fill.commission)) {
    throw new BadUserInputError(
      `Execution ${req.execId} is already ${fill.quantity.toFixed()} @ ${fill.price.toFixed()} (commission ${fill.commission.toFixed()}); the correction changes nothing.`,
      { field: 'quantity' },
    );
  }
  const corrected = {
    ...fill,
    ...next,
    signedQuantity: fill.signedQuantity.isNegative() ? next.quantity.negated() : next.quantity,
    busted: bust,
  };
  const writes = new LedgerWrites();
  const change = await replayBook(
    m,
    writes,
    { traderId: ref.trader_id, symbol: ref.symbol },
    { executedAt: fill.executedAt, arrival: fill.arrival },
    [],
    new Set([order.id]),
    new Map([[fill.id, corrected]]),
  );
  const correction = Object.assign(new FillCorrection(), {
    id: newId(),
    fillId: fill.id,
    traderId: ref.trader_id,
    symbol: ref.symbol,
    correctionId: req.correctionId,
    kind: req.kind,
    quantity: bust ? null : next.quantity,
    price: bust ? null : next.price,
    commission: bust ? null : next.commission,
    previousQuantity: fill.quantity,
    previousPrice: fill.price,
    previousCommission: fill.commission,
    reason: req.reason,
    actor: who.actor,
    source: who.source,
    createdAt: new Date(),
  });
  writes.corrections.push({
    id: correction.id,
    fill_id: fill.id,
    trader_id: ref.trader_id,
    symbol: ref.symbol,
    correction_id: req.correctionId,
    kind: req.kind,
    quantity: text(correction.quantity),
    price: text(correction.price),
    commission: text(correction.commission),
    previous_quantity: fill.quantity.toFixed(),
    previous_price: fill.price.toFixed(),
    previous_commission: fill.commission.toFixed(),
    reason: req.reason,
    actor: who.actor,
    source: who.source,
  });
  const w = writes.orders.get(order.id)!;
  writes.logs.push({
    orderId: order.id,
    traderId: order.traderId,
    action: bust ? ExecutionLogAction.BUSTED : ExecutionLogAction.CORRECTED,
    fromStatus: w.before.status as Order['status'],
    toStatus: w.row.status,
    reason: req.reason,
    details: {
      correctionId: req.correctionId,
      fillId: fill.id,
      execId: req.execId,
      venue: req.venue ?? null,
      before: { quantity: fill.quantity.toFixed(), price: fill.price.toFixed(), commission: fill.commission.toFixed() },
      after: bust
        ? null
        : { quantity: next.quantity.toFixed(), price: next.price.toFixed(), commission: next.commission.toFixed() },
      order: {
        before: w.before,
        after: {
          status: w.row.status,
          filledQuantity: w.row.filledQuantity.toFixed(),
          overfilledQuantity: w.row.overfilledQuantity.toFixed(),
          positionId: w.row.positionId,
        },
      },
      replay: bookChangeJson(change),
    },
    occurredAt: new Date(),
  });
  replayEntries(
    writes,
    [change],
    `Book replayed after ${bust ? 'bust' : 'correction'} ${req.correctionId} of execution ${req.execId}`,
    new Date(),
    new Set([order.id]),
  );
  await writes.flush(m, who);
  return { status: 'APPLIED', correction, fillId: fill.id, order: w.row };
}
