import { Max, Min } from 'class-validator';
import { ArgsType, type ClassType, Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import type { EntityTarget, ObjectLiteral } from 'typeorm';
import { BadUserInputError } from './errors';
import { hydrate, type RequestDb, SqlWhere, tableOf } from './request-db';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export enum SortDirection {
  ASC = 'ASC',
  DESC = 'DESC',
}
registerEnumType(SortDirection, { name: 'SortDirection' });

@ArgsType()
export class PageArgs {
  @Field(() => Int, {
    defaultValue: DEFAULT_PAGE_SIZE,
    description: `How many items to return: 0 to ${MAX_PAGE_SIZE}, default ${DEFAULT_PAGE_SIZE}.`,
  })
  @Min(0, { message: 'first must be 0 or more.' })
  @Max(MAX_PAGE_SIZE, {
    message: `first must be at most ${MAX_PAGE_SIZE} (the page size limit); fetch further pages with after.`,
  })
  first: number = DEFAULT_PAGE_SIZE;

  @Field(() => String, {
    nullable: true,
    description: 'Return the items after this cursor (endCursor of the previous page).',
  })
  after?: string | null;
}

@ObjectType()
export class PageInfo {
  @Field()
  hasNextPage!: boolean;

  @Field({ description: 'True when the page was requested with `after` (items exist before it).' })
  hasPreviousPage!: boolean;

  @Field(() => String, { nullable: true })
  startCursor!: string | null;

  @Field(() => String, { nullable: true })
  endCursor!: string | null;
}

export interface Edge<T> {
  cursor: string;
  node: T;
}

/** What a connection resolver returns; `totalCount` runs its query only when the field is asked for. */
export interface ConnectionResult<T> {
  edges: Edge<T>[];
  pageInfo: PageInfo;
  count: () => Promise<number>;
}

export interface ConnectionType<T> {
  edges: Edge<T>[];
  pageInfo: PageInfo;
  totalCount(): Promise<number>;
}

/** `<Name>Connection` and `<Name>Edge` object types for a node type, Relay style. */
export function connectionType<T extends object>(nodeType: ClassType<T>, name: string): ClassType<ConnectionType<T>> {
  @ObjectType(`${name}Edge`)
  class EdgeType {
    @Field({ description: 'Opaque; pass it as `after` to continue after this item.' })
    cursor!: string;

    @Field(() => nodeType)
    node!: T;
  }

  @ObjectType(`${name}Connection`)
  class Connection {
    @Field(() => [EdgeType])
    edges!: Edge<T>[];

    @Field(() => PageInfo)
    pageInfo!: PageInfo;

    count!: () => Promise<number>;

    @Field(() => Int, {
      description: 'Number of items matching the filter, across all pages (one extra query, run only when asked).',
    })
    totalCount(): Promise<number> {
      return this.count();
    }
  }
  return Connection;
}

/** A sortable column: its GraphQL enum value, SQL column and SQL type (cursor values are cast to it). */
export interface SortKey {
  name: string;
  column: string;
  type: 'timestamptz' | 'text';
}

interface Cursor {
  k: string;
  v: string;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TIMESTAMP_TEXT = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?$/;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function encodeCursor(key: SortKey, value: string, id: string): string {
  return Buffer.from(JSON.stringify({ k: key.name, v: value, id } satisfies Cursor)).toString('base64url');
}

/** Decodes a cursor made by `encodeCursor` for the same sort key; anything else is BAD_USER_INPUT. */
export function decodeCursor(cursor: string, key: SortKey): Cursor {
  const bad = (why: string): BadUserInputError =>
    new BadUserInputError(`after is not a cursor of this list (${why}); use a cursor returned by the same query.`, {
      field: 'after',
    });
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad('it is not a cursor at all');
  }
  const c = parsed as Partial<Cursor> | null;
  if (!c || typeof c !== 'object' || typeof c.k !== 'string' || typeof c.v !== 'string' || typeof c.id !== 'string') {
    throw bad('it is not a cursor at all');
  }
  if (c.k !== key.name) throw bad(`it was made for ordering by ${c.k}, not ${key.name}`);
  if (!isUuid(c.id)) throw bad('its id is malformed');
  if (key.type === 'timestamptz' ? !TIMESTAMP_TEXT.test(c.v) : c.v.length > 1000)
    throw bad('its position is malformed');
  return c as Cursor;
}

export function emptyPageInfo(after: string | null | undefined): PageInfo {
  return { hasNextPage: false, hasPreviousPage: !!after, startCursor: null, endCursor: null };
}

/** Edges and page info from rows fetched with one extra row (`first + 1`) to tell whether more follow. */
export function toPage<T extends { id: string }>(
  nodes: { node: T; sortValue: string }[],
  key: SortKey,
  first: number,
  after: string | null | undefined,
): { edges: Edge<T>[]; pageInfo: PageInfo } {
  const edges = nodes
    .slice(0, first)
    .map(({ node, sortValue }) => ({ node, cursor: encodeCursor(key, sortValue, node.id) }));
  return {
    edges,
    pageInfo: {
      hasNextPage: nodes.length > first,
      hasPreviousPage: !!after,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}

/** The keyset condition "after this cursor" for `alias`, in the sort direction. */
export function afterCondition(
  where: SqlWhere,
  alias: string,
  key: SortKey,
  direction: SortDirection,
  cursor: Cursor,
): void {
  const op = direction === SortDirection.ASC ? '>' : '<';
  where.add(`(${alias}."${key.column}", ${alias}."id") ${op} (?::${key.type}, ?::uuid)`, cursor.v, cursor.id);
}

export interface PageQuery<T extends ObjectLiteral> {
  entity: EntityTarget<T>;
  /** Filter conditions over alias `t`. */
  where: SqlWhere;
  key: SortKey;
  direction: SortDirection;
  page: PageArgs;
}

/**
 * One page of a top-level list: keyset pagination on (sort key, id), one statement, plus one
 * count statement if and only if `totalCount` is asked for.
 */
export async function paginate<T extends ObjectLiteral & { id: string }>(
  db: RequestDb,
  q: PageQuery<T>,
): Promise<ConnectionResult<T>> {
  const { key, direction, page } = q;
  const filtered = new SqlWhere([...q.where.params]);
  filtered.conditions.push(...q.where.conditions);
  if (page.after) afterCondition(filtered, 't', key, direction, decodeCursor(page.after, key));
  const rows = await db.run(async (m) => {
    if (page.first === 0) return [];
    const sql =
      `SELECT t.*, t."${key.column}"::text AS "__sort" FROM ${tableOf(m, q.entity)} t ${filtered} ` +
      `ORDER BY t."${key.column}" ${direction}, t."id" ${direction} LIMIT ${page.first + 1}`;
    const raw = (await m.query(sql, filtered.params)) as Record<string, unknown>[];
    return raw.map((r) => ({ node: hydrate(m, q.entity, r), sortValue: String(r.__sort) }));
  });
  return {
    ...toPage(rows, key, page.first, page.after),
    count: () =>
      db.run(async (m) => {
        const [{ n }] = (await m.query(
          `SELECT count(*)::int AS n FROM ${tableOf(m, q.entity)} t ${q.where}`,
          q.where.params,
        )) as {
          n: number;
        }[];
        return n;
      }),
  };
}
