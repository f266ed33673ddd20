import { Args, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import { requireRole } from '../auth';
import type { Context } from '../context';
import { BadUserInputError } from '../errors';
import { reportIssues, saveBaseline } from './baseline';
import {
  type IssueRow,
  issueKey,
  linkRate,
  linkSummary,
  REPORT_ORDER,
  SEVERITY,
  toIssue,
} from './data-quality.service';
import { DataQualityReport, DataQualityReportArgs, type DataQualityIssueType } from './data-quality.types';
import { reconcile } from './reconcile.service';
import { ReconcileArgs, ReconcileFixStatus, Reconciliation } from './reconcile.types';

const encode = (key: string) => Buffer.from(key, 'utf8').toString('base64url');
function decode(cursor: string): string {
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^\d{2}\|[A-Z_]+\|[^|]*\|[^|]*\|[^|]*$/.test(key) || encode(key) !== cursor) {
    throw new BadUserInputError('after is not a cursor of this report (use an endCursor it returned).', {
      field: 'after',
    });
  }
  return key;
}

@Resolver()
export class ComplianceResolver {
  @Query(() => DataQualityReport, {
    description:
      'Checks the ledger and the log over a time range (compliance, admin): every disagreement with the numbers that disagree, totals by type and the link rate (README "Compliance").',
  })
  async dataQualityReport(@Args(() => DataQualityReportArgs) a: DataQualityReportArgs, @Ctx() ctx: Context) {
    requireRole(ctx.principal, ['compliance', 'admin'], 'run the data-quality report');
    const after = a.after ? decode(a.after) : null;
    const range = { from: a.from ?? null, to: a.to ?? null };
    const counts = new Map<DataQualityIssueType, number>();
    // The page: the `first` smallest keys after the cursor, kept in a bounded buffer.
    let page: { key: string; row: IssueRow }[] = [];
    const keep = a.first + 1;
    const trim = () => {
      page.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
      page = page.slice(0, keep);
    };
    const { run, ...summary } = await ctx.db.run(async (m) => {
      // The change scans' second connection (baseline.ts).
      const second = {
        dataSource: ctx.db.dataSource,
        principal: ctx.principal,
        statementTimeoutMs: ctx.db.statementTimeoutMs,
      };
      // The link rate comes with the report's scan of the orders when it makes one.
      const options = { types: a.types, key: ctx.log.key, full: a.full, second, linkRange: range };
      const run = await reportIssues(m, range, options, (row) => {
        counts.set(row.type, (counts.get(row.type) ?? 0) + 1);
        const key = issueKey(row);
        if (after !== null && key <= after) return;
        page.push({ key, row });
        if (page.length > 4 * keep) trim();
      });
      return { run, ...(run.link ? linkSummary(run.link) : await linkRate(m, range)) };
    });
    if (run.next && ctx.log.key) {
      await saveBaseline(ctx.db.dataSource, ctx.principal, ctx.db.statementTimeoutMs, ctx.log.key, run.next);
    }
    trim();
    const edges = page.slice(0, a.first).map((p) => ({ cursor: encode(p.key), node: toIssue(p.row) }));
    const totals = REPORT_ORDER.filter((type) => !a.types?.length || a.types.includes(type)).map((type) => ({
      type,
      severity: SEVERITY[type],
      count: counts.get(type) ?? 0,
    }));
    const issueCount = totals.reduce((n, t) => n + t.count, 0);
    return Object.assign(new DataQualityReport(), {
      ...range,
      generatedAt: new Date(),
      ...summary,
      issueCount,
      complete: run.mode === 'complete',
      changedBooks: run.changedBooks,
      changedOrders: run.changedOrders,
      totals,
      issues: {
        edges,
        pageInfo: {
          hasNextPage: page.length > a.first,
          hasPreviousPage: after !== null,
          startCursor: edges[0]?.cursor ?? null,
          endCursor: edges.at(-1)?.cursor ?? null,
        },
        totalCount: () => Promise.resolve(issueCount),
      },
    });
  }

  @Mutation(() => Reconciliation, {
    description:
      'Runs the data-quality checks and, with apply, fixes the safe cases (admin): each book with an unlinked filled order, a position or an order that disagrees with its fills is replayed from its fills in a transaction of its own and logged RECOVERED; everything else is reported and left alone. Without apply it writes nothing.',
  })
  async reconcile(@Args(() => ReconcileArgs) a: ReconcileArgs, @Ctx() ctx: Context): Promise<Reconciliation> {
    requireRole(ctx.principal, ['admin'], 'reconcile the ledger');
    const range = { from: a.from ?? null, to: a.to ?? null };
    const r = await ctx.db.run((m) =>
      reconcile(m, ctx.db.dataSource, ctx.principal, ctx.who, ctx.db.statementTimeoutMs, range, {
        apply: a.apply,
        maxFixes: a.maxFixes,
        key: ctx.log.key,
      }),
    );
    return {
      applied: r.applied,
      proposed: r.fixes.length,
      fixed: r.fixes.filter((f) => f.status === ReconcileFixStatus.APPLIED).length,
      failed: r.fixes.filter((f) => f.status === ReconcileFixStatus.FAILED).length,
      deferred: r.deferred,
      fixes: r.fixes,
      leftAlone: r.leftAlone,
    };
  }
}
