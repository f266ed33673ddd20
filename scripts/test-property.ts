/**
 * The ledger property test at scale (issue 7 point 7): seeded scenarios delivered in several orders
 * and batchings against a real PostgreSQL (DATABASE_URL when set, else a temporary embedded one,
 * exactly as the jest globalSetup does), compared with each other, with the replay model, with
 * the cash-flow rule and with recalculateBook.
 *
 *   npx ts-node --transpile-only scripts/test-property.ts --scenarios 5000 --seed 1
 *   options: --scenarios N (default 1000)  --seed N (first seed, default 1)  --plans N (orderings per
 *            scenario, default 2)  --keep-going (run all, then shrink the smallest failure)
 *            --no-shrink  --shrink-seconds N (default 180)  --large (bigger scenarios)
 *            --concurrency N (scenarios at a time, default 2)
 *            --replay FILE (run the scenario JSON a failure printed, e.g. after a fix)
 *
 * Prints progress, a summary and the smallest failing scenario (JSON); exits 1 on any failure.
 */
import { readFileSync } from 'node:fs';
import { commandLine, usageError, wholeNumber } from './cli';

// The command line before the modules below load (the test harness, TypeORM): --help answers at once.
const args = commandLine(
  {
    name: 'test:property',
    synopsis: '[--scenarios N] [--seed N] [--plans N] [--keep-going] [--no-shrink] …',
    about:
      'The ledger property test at scale: seeded scenarios delivered in several orders and batchings\n' +
      'against a real PostgreSQL (DATABASE_URL when set, else a temporary embedded one), compared with\n' +
      'each other, with the replay model, with the cash-flow rule and with recalculateBook. Prints progress,\n' +
      'a summary and the smallest failing scenario (JSON); exits 1 on any failure.',
    options: {
      scenarios: { type: 'string', value: 'N', help: 'scenarios to run', default: '1000' },
      seed: { type: 'string', value: 'N', help: 'the first seed (then seed+1, …)', default: '1' },
      plans: { type: 'string', value: 'N', help: 'delivery orders per scenario', default: '2' },
      concurrency: { type: 'string', value: 'N', help: 'scenarios at a time', default: '2' },
      large: { type: 'boolean', help: 'bigger scenarios (3 traders, 3 symbols, 10 orders, 4 fills each)' },
      'keep-going': { type: 'boolean', help: 'run every scenario, then shrink the smallest failure' },
      'no-shrink': { type: 'boolean', help: 'do not shrink a failure' },
      'shrink-seconds': { type: 'string', value: 'N', help: 'time allowed for shrinking', default: '180' },
      replay: {
        type: 'string',
        value: 'FILE',
        help: 'run the scenario JSON a failure printed (e.g. after a fix) instead of generated ones',
      },
    },
  },
  ({ values }) => {
    let replayed: Scenario | null = null;
    if (values.replay !== undefined) {
      try {
        replayed = JSON.parse(readFileSync(values.replay, 'utf8')) as Scenario;
      } catch (error) {
        usageError(`--replay: cannot read a scenario from ${values.replay} (${(error as Error).message})`);
      }
    }
    return {
      scenarios: wholeNumber(values.scenarios, '--scenarios', 1) ?? 1000,
      firstSeed: wholeNumber(values.seed, '--seed') ?? 1,
      plans: wholeNumber(values.plans, '--plans', 1) ?? 2,
      concurrency: wholeNumber(values.concurrency, '--concurrency', 1) ?? 2,
      large: values.large ?? false,
      keepGoing: values['keep-going'] ?? false,
      shrink: !values['no-shrink'],
      shrinkSeconds: wholeNumber(values['shrink-seconds'], '--shrink-seconds') ?? 180,
      replayFile: values.replay,
      replayed,
    };
  },
);

import 'reflect-metadata';
// The app logs every internal error as JSON; a failure here is reported by this script instead.
process.env.LOG_LEVEL ??= 'fatal';
import globalSetup from '../test/global-setup';
import globalTeardown from '../test/global-teardown';
import { adminQuery, createTestDatabase, startTestApp } from '../test/harness';
import { report, runSeeds, shrinkFailure } from '../test/property/run';
import { type GenOptions, SMALL, type Scenario, generate, size } from '../test/property/scenario';

async function main(): Promise<number> {
  const { scenarios, firstSeed, keepGoing, shrinkSeconds, concurrency, replayFile, replayed } = args;
  const opts: GenOptions = {
    ...(args.large
      ? { maxTraders: 3, maxSymbols: 3, maxOrders: 10, maxFillsPerOrder: 4, plans: 2, maxBatch: 8 }
      : SMALL),
    plans: args.plans,
  };

  await globalSetup();
  const db = await createTestDatabase();
  // Only this scratch database: commits need not wait for the WAL flush.
  await adminQuery(`ALTER DATABASE "${db.name}" SET synchronous_commit = off`);
  const app = await startTestApp(db.url, { poolMax: 4 });
  const started = Date.now();
  let ran = 0;
  try {
    // --replay FILE: the scenario printed by an earlier failure (JSON) instead of generated ones.
    const seeds = replayed ? [replayed.seed] : Array.from({ length: scenarios }, (_, i) => firstSeed + i);
    console.log(
      replayed
        ? `Ledger property test: the scenario in ${replayFile}`
        : `Ledger property test: ${scenarios} scenarios from seed ${firstSeed}, ${opts.plans} orderings each, ${concurrency} at a time`,
    );
    const failed = await runSeeds(app, seeds, {
      generate: (seed) => replayed ?? generate(seed, opts),
      concurrency,
      keepGoing,
      onResult: (seed, failures, done) => {
        ran = done;
        if (failures.length > 0) {
          console.log(`  seed ${seed}: FAILED (${[...new Set(failures.map((f) => f.kind))].join(', ')})`);
          for (const f of failures.slice(0, 3))
            console.log(`    [${f.kind}] ${f.message.split('\n').slice(0, 6).join('\n    ')}`);
        }
        if (done % 100 === 0 || done === seeds.length) {
          const s = (Date.now() - started) / 1000;
          console.log(`  ${done}/${seeds.length} scenarios, ${s.toFixed(1)} s (${(done / s).toFixed(1)}/s)`);
        }
      },
    });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `\nSummary: ${ran} scenarios run in ${seconds} s, ${ran - failed.length} passed, ${failed.length} failed` +
        (failed.length ? ` (seeds ${failed.map((f) => f.seed).join(', ')})` : ''),
    );
    if (failed.length === 0) return 0;

    // The smallest failing scenario, shrunk further.
    const first = failed.reduce((a, b) => (size(b.scenario) < size(a.scenario) ? b : a));
    const shrunk = !args.shrink
      ? undefined
      : await shrinkFailure(app, first.scenario, first.failures, {
          deadline: Date.now() + shrinkSeconds * 1000,
          log: (line) => console.log(line),
        });
    console.log(`\n${report(first.seed, first.failures, shrunk)}`);
    return 1;
  } finally {
    await app.close();
    await db.drop();
    await globalTeardown();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(2);
  },
);
