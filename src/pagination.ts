import { Max, Min } from 'class-validator';
import { ArgsType, type ClassType, Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import type { EntityTarget, ObjectLiteral } from 'typeorm';
import { BadUserInputError } from './errors';
import { isUuid } from './ids';
import { badTextReason } from './validation';
import { type Projection, type Row, rowColumns, statementName } from './loaders';
import { type RequestDb, SqlWhere, tableOf } from './request-db';

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

@ObjectType({ simpleResolvers: true })
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
  @ObjectType(`${name}Edge`, { simpleResolvers: true })
  class EdgeType {
    @Field({ description: 'Opaque; pass it as `after` to continue after this item.' })
    cursor!: string;

    @Field(() => nodeType)
    node!: T;
  }

  @ObjectType(`${name}Connection`, { simpleResolvers: true })
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

/** Which list, in which order (and for a nested list, under which parent) a cursor belongs to. Without `parentId`, any parent is accepted (the caller checks it). */
export interface CursorScope {
  list: string;
  key: SortKey;
  direction: SortDirection;
  parentId?: string;
}

interface Cursor {
  /** list/key/direction */
  k: string;
  v: string;
  id: string;
  p?: string;
}

const TIMESTAMP_CURSOR = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{6}Z$/;

/** A UTC timestamp as `sortValueSql` writes it, for a day that exists (year 0001 to 9999). */
export function isCursorTimestamp(text: string): boolean {
  const m = TIMESTAMP_CURSOR.exec(text);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number);
  if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return false;
  const daysInMonth = new Date(Date.UTC(2000, month, 0)).getUTCDate(); // 2000 is a leap year
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (month === 2 && !leap ? 28 : daysInMonth);
}

/**
 * The sort value as cursor text, computed by PostgreSQL: timestamps in UTC with microseconds
 * (independent of the session's DateStyle and TimeZone), text as it is.
 */
export function sortValueSql(alias: string, key: SortKey): string {
  const col = `${alias}."${key.column}"`;
  return key.type === 'timestamptz'
    ? `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
    : `${col}::text`;
}

const scopeId = (s: CursorScope): string => `${s.list}/${s.key.name}/${s.direction}`;

export function encodeCursor(scope: CursorScope, value: string, id: string): string {
  const c: Cursor = { k: scopeId(scope), v: value, id, ...(scope.parentId ? { p: scope.parentId } : {}) };
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

/**
 * Decodes a cursor made by `encodeCursor` for the same list, ordering and parent; anything else —
 * garbage, another list's cursor, an impossible date — is BAD_USER_INPUT before any SQL runs.
 */
export function decodeCursor(cursor: string, scope: CursorScope): Cursor {
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
  const [list, keyName, direction] = c.k.split('/');
  if (list !== scope.list) throw bad(`it was made for ${list}, not ${scope.list}`);
  if (keyName !== scope.key.name || direction !== scope.direction) {
    throw bad(`it was made for ordering by ${keyName} ${direction}, not ${scope.key.name} ${scope.direction}`);
  }
  if (scope.parentId !== undefined && c.p !== scope.parentId) throw bad('it was made under another parent');
  if (!isUuid(c.id) || (c.p !== undefined && (typeof c.p !== 'string' || !isUuid(c.p))))
    throw bad('its id is malformed');
  const valid =
    scope.key.type === 'timestamptz' ? isCursorTimestamp(c.v) : c.v.length <= 1000 && badTextReason(c.v) === null;
  if (!valid) throw bad('its position is malformed');
  return c as Cursor;
}

/** Edges and page info from rows fetched with one extra row (`first + 1`) to tell whether more follow. */
export function toPage<T extends { id: string }>(
  nodes: { node: T; sortValue: string }[],
  scope: CursorScope,
  first: number,
  after: string | null | undefined,
): { edges: Edge<T>[]; pageInfo: PageInfo } {
  const edges = nodes.slice(0, first).map(({ node, sortValue }) => new PageEdge(node, scope, sortValue));
  return {
    edges,
    pageInfo: {
      hasNextPage: nodes.length > first,
      hasPreviousPage: !!after,
      get startCursor() {
        return edges[0]?.cursor ?? null;
      },
      get endCursor() {
        return edges.at(-1)?.cursor ?? null;
      },
    },
  };
}

/** An edge whose cursor is written when it is read: a query that selects no `cursor` pays nothing for it. */
class PageEdge<T extends { id: string }> implements Edge<T> {
  constructor(
    readonly node: T,
    private readonly scope: CursorScope,
    private readonly sortValue: string,
  ) {}
  get cursor(): string {
    return encodeCursor(this.scope, this.sortValue, this.node.id);
  }
}

/** The keyset condition "after this cursor" for `alias`, in the sort direction. */
export function afterCondition(where: SqlWhere, alias: string, scope: CursorScope, cursor: Cursor): void {
  const op = scope.direction === SortDirection.ASC ? '>' : '<';
  const value = scope.key.type === 'timestamptz' ? `(?::timestamp AT TIME ZONE 'UTC')` : '?::text';
  where.add(
    `(${alias}."${scope.key.column}", ${alias}."id") ${op} (${value}, ?::uuid)`,
    cursor.v.replace(/Z$/, ''),
    cursor.id,
  );
}

export interface PageQuery<T extends ObjectLiteral> {
  /** The list's name, written into its cursors. */
  list: string;
  entity: EntityTarget<T>;
  /** Filter conditions over alias `t`. */
  where: SqlWhere;
  key: SortKey;
  direction: SortDirection;
  page: PageArgs;
  /** The columns the request reads (default: every column). */
  projection?: Projection;
  /** The request reads totalCount: its statement goes with the page's. */
  withCount?: boolean;
}

/** What a list query reads: its rows' columns and whether it asks for totalCount (see `listSelection`). */
export type ListSelection = Pick<PageQuery<ObjectLiteral>, 'projection' | 'withCount'>;

/**
 * One page of a top-level list: keyset pagination on (sort key, id), one statement, plus one
 * count statement if and only if `totalCount` is asked for.
 */
export async function paginate<T extends ObjectLiteral & { id: string }>(
  db: RequestDb,
  q: PageQuery<T>,
): Promise<ConnectionResult<Row<T>>> {
  const { key, direction, page } = q;
  const scope: CursorScope = { list: q.list, key, direction };
  const filtered = new SqlWhere([...q.where.params]);
  filtered.conditions.push(...q.where.conditions);
  if (page.after) afterCondition(filtered, 't', scope, decodeCursor(page.after, scope));
  const m = db.dataSource.manager;
  // The page's rows are chosen first; only they are then written as text (PostgreSQL would otherwise
  // compute every row's select list before the sort).
  const order = (alias: string) => `${alias}."${key.column}" ${direction}, ${alias}."id" ${direction}`;
  const sql =
    `SELECT ${rowColumns(m, q.entity, 'p', q.projection)}, ${sortValueSql('p', key)} AS "__sort" FROM (` +
    `SELECT t.* FROM ${tableOf(m, q.entity)} t ${filtered} ORDER BY ${order('t')} LIMIT ${filtered.param(page.first + 1)}` +
    `) p ORDER BY ${order('p')}`;
  // Named by its text (which filters, which order, which columns: not their values, which are parameters).
  // Asked for with the page (the same tick), the count goes to PostgreSQL in the page's round trip.
  const pageRows = db.read<Row<T> & { __sort: string }>(statementName('tt_page', sql), sql, filtered.params);
  const countSql = `SELECT count(*)::int AS n FROM ${tableOf(m, q.entity)} t ${q.where}`;
  const counting = () => db.read<{ n: number }>(statementName('tt_count', countSql), countSql, q.where.params);
  const counted = q.withCount ? counting() : undefined;
  // A failure of the count is the page's too (one transaction); it is reported where totalCount is read.
  counted?.catch(() => undefined);
  const rows = (await pageRows).map((r) => ({ node: r, sortValue: r.__sort }));
  return {
    ...toPage(rows, scope, page.first, page.after),
    count: async () => (await (counted ?? counting()))[0].n,
  };
}
