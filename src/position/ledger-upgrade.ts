import type { DataSource } from 'typeorm';
import { APPLICATION_ROLE } from '../request-db';
import { recalculateBook } from './position.service';

export interface UpgradeSummary {
  books: number;
  changed: number;
}

/** Who the upgrade acts as in the log. */
const SYSTEM = { actor: 'system', source: 'RECONCILIATION' };

/**
 * Brings positions written under the earlier netting rules (rules_version 1: arrival order, flips
 * in place, costs removed at the rounded average) to the event-time rules of DOMAIN.md §4: every book
 * that has such a position is replayed from its fills, one transaction per book, as the application
 * role with admin rights, each change logged (RECOVERED / POSITION_LINKED, actor `system`). Safe to run
 * again: a replayed book has rules_version 2 and is not touched twice. `npm start` runs it after the
 * migrations; `npm run ledger:upgrade` runs it alone.
 */
export async function upgradeLedger(dataSource: DataSource): Promise<UpgradeSummary> {
  const books = (await dataSource.transaction(async (m) => {
    await m.query(`SET LOCAL tradetrail.role = 'admin'`);
    return m.query(
      `SELECT DISTINCT trader_id, symbol FROM positions WHERE rules_version < 2 ORDER BY trader_id, symbol`,
    );
  })) as { trader_id: string; symbol: string }[];
  let changed = 0;
  for (const b of books) {
    const result = await dataSource.transaction(async (m) => {
      await m.query(`SET LOCAL ROLE ${APPLICATION_ROLE}; SET LOCAL tradetrail.role = 'admin'`);
      const r = await recalculateBook(m, SYSTEM, b.trader_id, b.symbol);
      // Positions the replay kept unchanged are marked as computed by the current rules too.
      await m.query(
        `UPDATE positions SET rules_version = 2 WHERE trader_id = $1 AND symbol = $2 AND rules_version < 2`,
        [b.trader_id, b.symbol],
      );
      return r;
    });
    if (result.changed) changed += 1;
  }
  return { books: books.length, changed };
}
