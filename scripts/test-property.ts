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
 *
 * Prints progress, a summary and the smallest failing scenario (JSON); exits 1 on any failure.
 */
import 'reflect-metadata';
// The app logs every internal error as JSON; a failure here is reported by this script instead.
process.env.LOG_LEVEL ??= 'fatal';
import globalSetup from '../test/global-setup';
import globalTeardown from '../test/global-teardown';
import { createTestDatabase, startTestApp } from '../test/harness';
import { checkScenario, type Failure, report, shrinkFailure } from '../test/property/run';
import { type GenOptions, SMALL, type Scenario, generate, size } from '../test/property/scenario';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} needs a whole number; got ${process.argv[i + 1]}`);
  return v;
}
const flag = (name: string): boolean => process.argv.includes(`--${name}`);

async function main(): Promise<number> {
  const scenarios = option('scenarios', 1000);
  const firstSeed = option('seed', 1);
  const opts: GenOptions = {
    ...(flag('large')
      ? { maxTraders: 3, maxSymbols: 3, maxOrders: 10, maxFillsPerOrder: 4, plans: 2, maxBatch: 8 }
      : SMALL),
    plans: option('plans', SMALL.plans),
  };
  const keepGoing = flag('keep-going');
  const shrinkSeconds = option('shrink-seconds', 180);

  await globalSetup();
  const db = await createTestDatabase();
  const app = await startTestApp(db.url, { poolMax: 4 });
  const started = Date.now();
  const failed: { seed: number; scenario: Scenario; failures: Failure[] }[] = [];
  let ran = 0;
  try {
    console.log(`Ledger property test: ${scenarios} scenarios from seed ${firstSeed}, ${opts.plans} orderings each`);
    for (let seed = firstSeed; seed < firstSeed + scenarios; seed++) {
      const scenario = generate(seed, opts);
      const failures = await checkScenario(app, scenario);
      ran += 1;
      if (failures.length > 0) {
        failed.push({ seed, scenario, failures });
        console.log(`  seed ${seed}: FAILED (${failures.map((f) => f.kind).join(', ')})`);
        if (!keepGoing) break;
      }
      if (ran % 50 === 0 || seed === firstSeed + scenarios - 1) {
        const s = (Date.now() - started) / 1000;
        console.log(
          `  ${ran}/${scenarios} scenarios, ${failed.length} failed, ${s.toFixed(1)} s (${(ran / s).toFixed(1)}/s)`,
        );
      }
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `\nSummary: ${ran} scenarios run in ${seconds} s, ${ran - failed.length} passed, ${failed.length} failed` +
        (failed.length ? ` (seeds ${failed.map((f) => f.seed).join(', ')})` : ''),
    );
    if (failed.length === 0) return 0;

    // The smallest failing scenario, shrunk further.
    const first = failed.reduce((a, b) => (size(b.scenario) < size(a.scenario) ? b : a));
    const shrunk = flag('no-shrink')
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
