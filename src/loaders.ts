import { createHash } from 'node:crypto';
import DataLoader from 'dataloader';
import type Decimal from 'decimal.js';
import {
  type FieldNode,
  type FragmentDefinitionNode,
  getArgumentValues,
  getNamedType,
  type GraphQLResolveInfo,
  isObjectType,
  type SelectionSetNode,
} from 'graphql';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import type { EntityManager, EntityMetadata, EntityTarget, ObjectLiteral } from 'typeorm';
import type { ListSelection } from './pagination';
import { type RequestDb, tableOf } from './request-db';

/**
 * The read path's rows. A query's rows go from PostgreSQL to the JSON response without being parsed
 * into Decimal or Date just to be printed again: PostgreSQL writes each numeric as its canonical
 * decimal text (`trim_scale`: "150.25", "-3", "0") and each time as ISO 8601 in UTC with
 * milliseconds ("2026-03-02T14:30:00.123Z", what `Date.toISOString` prints), under the entity's
 * property names, and the row pg builds is the object the resolvers receive (no entity hydration).
 * Anything that computes with a value parses it (`toDec`); the scalars pass these texts through.
 */
export type Wire<V> = V extends Decimal ? string : V extends Date ? string : V;
export type Row<T> = { [K in keyof T]: Wire<T[K]> };
/** What a field resolver's parent is: a row read here, or an entity a mutation returns. */
export type View<T> = T | Row<T>;

/** ISO 8601 in UTC with milliseconds, as `Date.toISOString` (both truncate the microseconds). */
export const ISO_TIME_SQL = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

function columnSql(column: ColumnMetadata, alias: string): string {
  const col = `${alias}."${column.databaseName}"`;
  switch (column.type) {
    case 'numeric':
      return `trim_scale(${col})`;
    case 'timestamptz':
      return `to_char(${col} AT TIME ZONE 'UTC', ${ISO_TIME_SQL})`;
    case 'bigint': // counters and sequence numbers, far below 2^53: a JS number, as the entity has it
      return `${col}::float8`;
    default:
      return col;
  }
}

/**
 * Which columns of an entity a request reads: property names, or null for every column. Computed
 * from the GraphQL selection (`projectionOf`): a dashboard asking for 8 of a log entry's 19 columns
 * gets those 8 (and `id`), as a SQL `SELECT` of exactly them.
 */
export interface Projection {
  readonly key: string;
  readonly properties: readonly string[] | null;
}
export const EVERY_COLUMN: Projection = { key: '*', properties: null };

const selectLists = new WeakMap<EntityMetadata, Map<string, string>>();

/** The select list of an entity's row (`Row<T>`: every selectable column, or a projection's), over `alias`. */
export function rowColumns(
  manager: EntityManager,
  entity: EntityTarget<ObjectLiteral>,
  alias = 't',
  projection: Projection = EVERY_COLUMN,
): string {
  const metadata = manager.connection.getMetadata(entity);
  let byAlias = selectLists.get(metadata);
  if (!byAlias) selectLists.set(metadata, (byAlias = new Map()));
  const cacheKey = `${alias}:${projection.key}`;
  let list = byAlias.get(cacheKey);
  if (list === undefined) {
    for (const column of metadata.columns) {
      if (
        column.isSelect &&
        !['numeric', 'timestamptz', 'bigint'].includes(String(column.type)) &&
        column.transformer
      ) {
        throw new Error(
          `${metadata.name}.${column.propertyName}: a transformed column the read path cannot write as text`,
        );
      }
    }
    const wanted = projection.properties && new Set(projection.properties);
    list = metadata.columns
      .filter((c) => c.isSelect && (!wanted || wanted.has(c.propertyName)))
      .map((c) => `${columnSql(c, alias)} AS "${c.propertyName}"`)
      .join(', ');
    byAlias.set(cacheKey, list);
  }
  return list;
}

/**
 * Fields resolved from the row's own keys, with the columns they read. A selected field that is
 * neither a column nor one of these (a value computed from several columns, such as `exception` or
 * `effectivePrice`) makes the projection every column: a resolver never meets a column left out.
 */
const KEY_FIELDS: Record<string, readonly string[]> = {
  __typename: [],
  fills: ['id'],
  executionLogs: ['id'],
  corrections: ['id'],
  orders: ['id'],
  flippedTo: ['id'],
  trader: ['traderId'],
  order: ['orderId'],
  position: ['positionId'],
  flippedFrom: ['flippedFromId'],
  replacesOrder: ['replacesOrderId'],
  parentOrder: ['parentOrderId'],
};

const columnSets = new WeakMap<EntityMetadata, Set<string>>();
const projections = new WeakMap<FieldNode, Map<EntityMetadata, Projection>>();

/**
 * The projection of the entity rows a field returns, from its selection (for a connection, the
 * selection of `edges { node }`), plus `extra` (keys the loader groups by). Inline fragments and named
 * fragments count; `@skip`/`@include` are ignored (a column too many, never one too few). Kept per
 * field of a parsed document: the same query's next request computes nothing.
 */
export function projectionOf(
  info: GraphQLResolveInfo,
  manager: EntityManager,
  entity: EntityTarget<ObjectLiteral>,
  connection = false,
): Projection {
  const metadata = manager.connection.getMetadata(entity);
  // A field selected once is the same selection every time its document runs; one merged from several
  // selections (a fragment's field next to another) is computed each time.
  const node = info.fieldNodes.length === 1 ? info.fieldNodes[0] : undefined;
  let byEntity = node && projections.get(node);
  if (node && !byEntity) projections.set(node, (byEntity = new Map()));
  let projection = byEntity?.get(metadata);
  if (projection) return projection;

  let columns = columnSets.get(metadata);
  if (!columns) {
    columns = new Set(metadata.columns.filter((c) => c.isSelect).map((c) => c.propertyName));
    columnSets.set(metadata, columns);
  }
  let fields = new Set<string>();
  for (const fieldNode of info.fieldNodes) collectFields(fieldNode.selectionSet, info.fragments, fields);
  if (connection) {
    const edges = new Set<string>();
    for (const fieldNode of info.fieldNodes)
      collectFields(fieldNode.selectionSet, info.fragments, edges, 'edges', 'node');
    fields = edges;
  }
  const properties = new Set(['id']);
  let every = false;
  for (const field of fields) {
    if (columns.has(field)) properties.add(field);
    else if (KEY_FIELDS[field]) for (const p of KEY_FIELDS[field]) properties.add(p);
    else every = true;
  }
  const sorted = [...properties].sort();
  projection = every || sorted.length >= columns.size ? EVERY_COLUMN : { key: sorted.join(','), properties: sorted };
  byEntity?.set(metadata, projection);
  return projection;
}

/** The names of the fields selected in `set` (following `path`, e.g. edges → node, when given), through fragments. */
function collectFields(
  set: SelectionSetNode | undefined,
  fragments: Record<string, FragmentDefinitionNode>,
  out: Set<string>,
  ...path: string[]
): void {
  for (const selection of set?.selections ?? []) {
    if (selection.kind === 'Field') {
      if (!path.length) out.add(selection.name.value);
      else if (selection.name.value === path[0])
        collectFields(selection.selectionSet, fragments, out, ...path.slice(1));
    } else if (selection.kind === 'InlineFragment') {
      collectFields(selection.selectionSet, fragments, out, ...path);
    } else {
      collectFields(fragments[selection.name.value]?.selectionSet, fragments, out, ...path);
    }
  }
}

/** The property name of a column (rows are keyed by property names). */
function propertyOf(manager: EntityManager, entity: EntityTarget<ObjectLiteral>, databaseName: string): string {
  const column = manager.connection.getMetadata(entity).findColumnWithDatabaseName(databaseName);
  if (!column) throw new Error(`no column ${databaseName}`);
  return column.propertyName;
}

/**
 * Building blocks of the per-request DataLoaders: each batch is one statement for all keys (a
 * prepared statement: each pooled connection plans it once), sent through the request's connection,
 * and answers in key order (`null` for a missing row, `[]` for a parent without children).
 */

/** One loader per distinct argument set (e.g. `first`/`after`/`status` of a nested connection). */
export class LoaderFamily<A, K, V> {
  private readonly loaders = new Map<string, DataLoader<K, V>>();
  constructor(
    private readonly make: (args: A) => DataLoader<K, V>,
    /** What tells argument sets apart (default: their JSON). */
    private readonly keyOf: (args: A) => string = (args) => JSON.stringify(args),
  ) {}

  for(args: A): DataLoader<K, V> {
    const id = this.keyOf(args);
    let loader = this.loaders.get(id);
    if (!loader) this.loaders.set(id, (loader = this.make(args)));
    return loader;
  }
}

/** A loader per projection (one statement per projection and batch); `load` and `loadMany` read whole rows. */
export class ProjectedLoader<V> extends LoaderFamily<Projection, string, V> {
  constructor(make: (projection: Projection) => DataLoader<string, V>) {
    super(make, (projection) => projection.key);
  }
  load(key: string): Promise<V> {
    return this.for(EVERY_COLUMN).load(key);
  }
  loadMany(keys: readonly string[]): Promise<(V | Error)[]> {
    return this.for(EVERY_COLUMN).loadMany(keys);
  }
}

/** `projection` plus one property (a key the loader groups its rows by). */
export function withProperty(projection: Projection, property: string): Projection {
  return projection.properties
    ? { key: `${projection.key}+${property}`, properties: [...projection.properties, property] }
    : projection;
}

/**
 * A read statement's prepared-statement name, from its text: one per distinct text (which table,
 * filters, order and columns; never the values, which are parameters), for the first texts this process
 * meets (the queries dashboards repeat); past that, unnamed — a client varying its selections endlessly
 * must not grow every connection's statement cache without bound.
 */
const MAX_NAMED_STATEMENTS = 256;
const statementNames = new Map<string, string>();
export function statementName(prefix: string, text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `${prefix}_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
    statementNames.set(text, name);
  }
  return name;
}

/** Rows by id: `WHERE id = ANY(ids)`. */
export function loaderById<T extends ObjectLiteral & { id: string }>(
  db: RequestDb,
  entity: EntityTarget<T>,
): ProjectedLoader<Row<T> | null> {
  return new ProjectedLoader(
    (projection) =>
      new DataLoader(async (ids) => {
        const m = db.dataSource.manager;
        const table = tableOf(m, entity);
        const sql = `SELECT ${rowColumns(m, entity, 't', projection)} FROM ${table} t WHERE t."id" = ANY($1::uuid[])`;
        const rows = await db.read<Row<T>>(statementName(`tt_read_${table.slice(1, -1)}_by_id`, sql), sql, [ids]);
        const found = new Map(rows.map((r) => [r.id as string, r]));
        return ids.map((id) => found.get(id) ?? null);
      }),
  );
}

/** Children of many parents at once: `WHERE <column> = ANY(keys) ORDER BY <orderBy>`. */
export function loaderByParent<T extends ObjectLiteral>(
  db: RequestDb,
  entity: EntityTarget<T>,
  column: string,
  orderBy: string,
): ProjectedLoader<Row<T>[]> {
  return new ProjectedLoader(
    (projection) =>
      new DataLoader(async (keys) => {
        const m = db.dataSource.manager;
        const table = tableOf(m, entity);
        const key = propertyOf(m, entity, column);
        const withKey = withProperty(projection, key);
        const sql = `SELECT ${rowColumns(m, entity, 't', withKey)} FROM ${table} t WHERE t."${column}" = ANY($1::uuid[]) ORDER BY ${orderBy}`;
        const rows = await db.read<Row<T>>(statementName(`tt_read_${table.slice(1, -1)}_by_${column}`, sql), sql, [
          keys,
        ]);
        const groups = groupBy(rows, (r) => r[key] as string);
        return keys.map((k) => groups.get(k) ?? []);
      }),
  );
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

/**
 * Starts, with a lookup by id at the root of a query, the loads of the child fields keyed by that same id
 * (an order's fills and log, a position's orders and fills), so that their statements go to PostgreSQL
 * in the lookup's own round trip (see `RequestDb.read`) instead of one round trip after it; the child
 * resolvers then find their rows in the loaders' caches. `children` maps a field's name to its load, given
 * the field's part of the query (as its own resolver would get it) and its arguments (coerced, defaults
 * applied); a load that returns undefined (its arguments say it cannot be prefetched) is left to the
 * resolver. A field under a directive (@skip,
 * @include) is left to its resolver too. When the lookup finds nothing, the children's rows (none: they
 * belong to the same id, under the same row-level security) are simply not used.
 */
export function prefetch(
  info: GraphQLResolveInfo,
  children: Record<string, (child: GraphQLResolveInfo, args: Record<string, unknown>) => Promise<unknown> | undefined>,
): void {
  const type = getNamedType(info.returnType);
  const fields = isObjectType(type) ? type.getFields() : {};
  const byResponseKey = new Map<string, FieldNode[]>();
  const visit = (set: SelectionSetNode | undefined): void => {
    for (const s of set?.selections ?? []) {
      if (s.directives?.length) continue;
      if (s.kind === 'InlineFragment') visit(s.selectionSet);
      else if (s.kind === 'FragmentSpread') visit(info.fragments[s.name.value]?.selectionSet);
      else if (Object.hasOwn(children, s.name.value)) {
        const key = s.alias?.value ?? s.name.value;
        byResponseKey.set(key, [...(byResponseKey.get(key) ?? []), s]);
      }
    }
  };
  for (const node of info.fieldNodes) visit(node.selectionSet);
  for (const nodes of byResponseKey.values()) {
    // Its error, if any, is the resolver's to report (it gets the same promise from the loader's cache,
    // or, when the prefetch itself could not start, starts the load again).
    try {
      const name = nodes[0].name.value;
      const args = getArgumentValues(fields[name], nodes[0], info.variableValues);
      children[name]({ ...info, fieldNodes: nodes }, args)?.catch(() => undefined);
    } catch {
      // left to the resolver
    }
  }
}

/** What a list resolver reads: the columns of its nodes and whether totalCount is asked for. */
export function listSelection(
  db: RequestDb,
  info: GraphQLResolveInfo,
  entity: EntityTarget<ObjectLiteral>,
): ListSelection {
  const fields = new Set<string>();
  for (const fieldNode of info.fieldNodes) collectFields(fieldNode.selectionSet, info.fragments, fields);
  return { projection: selection(db, info, entity, true), withCount: fields.has('totalCount') };
}

/** `projectionOf` for a resolver, with the request's entity metadata. */
export function selection(
  db: RequestDb,
  info: GraphQLResolveInfo,
  entity: EntityTarget<ObjectLiteral>,
  connection = false,
): Projection {
  return projectionOf(info, db.dataSource.manager, entity, connection);
}
