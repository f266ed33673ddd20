import DataLoader from 'dataloader';
import type { EntityTarget, ObjectLiteral } from 'typeorm';
import { hydrate, type RequestDb, tableOf } from './request-db';

/**
 * Building blocks of the per-request DataLoaders: each batch is one statement for all keys, sent
 * through the request's connection, and answers in key order (`null` for a missing row, `[]` for
 * a parent without children).
 */

export function loaderById<T extends ObjectLiteral & { id: string }>(
  db: RequestDb,
  entity: EntityTarget<T>,
): DataLoader<string, T | null> {
  return new DataLoader(async (ids) => {
    const found = await db.run(async (m) => {
      const rows = (await m.query(`SELECT * FROM ${tableOf(m, entity)} WHERE "id" = ANY($1::uuid[])`, [ids])) as Record<
        string,
        unknown
      >[];
      return new Map(rows.map((r) => [r.id as string, hydrate(m, entity, r)]));
    });
    return ids.map((id) => found.get(id) ?? null);
  });
}

/** Children of many parents at once: `WHERE <column> = ANY(keys) ORDER BY <orderBy>`. */
export function loaderByParent<T extends ObjectLiteral>(
  db: RequestDb,
  entity: EntityTarget<T>,
  column: string,
  orderBy: string,
): DataLoader<string, T[]> {
  return new DataLoader(async (keys) => {
    const groups = await db.run(async (m) => {
      const rows = (await m.query(
        `SELECT * FROM ${tableOf(m, entity)} WHERE "${column}" = ANY($1::uuid[]) ORDER BY ${orderBy}`,
        [keys],
      )) as Record<string, unknown>[];
      return groupBy(
        rows,
        (r) => r[column] as string,
        (r) => hydrate(m, entity, r),
      );
    });
    return keys.map((k) => groups.get(k) ?? []);
  });
}

/** Groups items by key, keeping their order (Node 20 has no Map.groupBy). */
export function groupBy<I, V = I>(
  items: I[],
  key: (item: I) => string,
  value: (item: I) => V = (i) => i as unknown as V,
): Map<string, V[]> {
  const groups = new Map<string, V[]>();
  for (const item of items) {
    const k = key(item);
    let list = groups.get(k);
    if (!list) groups.set(k, (list = []));
    list.push(value(item));
  }
  return groups;
}

/** One loader per distinct argument set (e.g. `first`/`after`/`status` of a nested connection). */
export class LoaderFamily<A, K, V> {
  private readonly loaders = new Map<string, DataLoader<K, V>>();
  constructor(private readonly make: (args: A) => DataLoader<K, V>) {}

  for(args: A): DataLoader<K, V> {
    const id = JSON.stringify(args);
    let loader = this.loaders.get(id);
    if (!loader) this.loaders.set(id, (loader = this.make(args)));
    return loader;
  }
}
