import { FillException } from './fill.entity';
import type { ExecutionOutcome } from './fill.service';

/**
 * What `recordExecution` and `recordExecutions` did in this process since it started, read by the
 * metrics endpoint (`tradetrail_executions_total`, `tradetrail_execution_exceptions_total`). Like any
 * Prometheus counter, a count of this process: it starts at 0 with the process.
 */
export const executionCounters = {
  applied: 0,
  duplicate: 0,
  refused: 0,
  /** Applied executions that were applied as exceptions, by reason (a subset of `applied`). */
  exceptions: { [FillException.ORDER_REPLACED]: 0, [FillException.ORDER_REJECTED]: 0, [FillException.OVERFILL]: 0 },
};

/** Counts committed outcomes: APPLIED (and its exception, if any) and DUPLICATE. REFUSED is counted by `countRefused`. */
export function countCommitted(outcomes: readonly ExecutionOutcome[]): void {
  for (const outcome of outcomes) {
    if (outcome.status === 'DUPLICATE') executionCounters.duplicate += 1;
    if (outcome.status !== 'APPLIED') continue;
    executionCounters.applied += 1;
    const { fill } = outcome;
    // As Fill.exception says it: the arrival's exception, else an overfill.
    const reason = fill.arrivalException ?? (fill.overfilledQuantity.gt(0) ? FillException.OVERFILL : null);
    if (reason) executionCounters.exceptions[reason] += 1;
  }
}

/** Counts refused executions (a refusal stands whether or not the request's transaction commits). */
export function countRefused(count: number): void {
  executionCounters.refused += count;
}
