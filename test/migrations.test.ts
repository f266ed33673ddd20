import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { createTestDatabase } from './harness';

/** What the catalog says about the application's schema: tables, columns, constraints, indexes, triggers, functions, types. */
async function catalog(url: string): Promise<Record<string, string[]>> {
  const c = new Client({ connectionString: url });
  await c.connect();
  const q = async (sql: string): Promise<string[]> => (await c.query<{ x: string }>(sql)).rows.map((r) => r.x);
  try {
    return {
      tables: await q(`SELECT tablename AS x FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`),
      columns:
        await q(`SELECT table_name || '.' || column_name || ' ' || data_type || coalesce('(' || numeric_precision || ',' || numeric_scale || ')', '') || ' ' || is_nullable || ' ' || coalesce(column_default, '') AS x
                        FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1`),
      constraints: await q(`SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) AS x
                            FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1`),
      indexes: await q(`SELECT indexdef AS x FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`),
      triggers: await q(
        `SELECT tgrelid::regclass || ' ' || tgname AS x FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1`,
      ),
      functions: await q(`SELECT proname AS x FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1`),
      grants: await q(`SELECT table_name || ' ' || string_agg(privilege_type, ',' ORDER BY privilege_type) AS x
                       FROM information_schema.role_table_grants WHERE grantee = 'tradetrail_app' GROUP BY table_name ORDER BY 1`),
      extensions: await q(`SELECT extname AS x FROM pg_extension ORDER BY 1`),
      types:
        await q(`SELECT typname || ' ' || string_agg(enumlabel, ',' ORDER BY enumsortorder) AS x FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
                      WHERE typnamespace = 'public'::regnamespace GROUP BY typname ORDER BY 1`),
    };
  } finally {
    await c.end();
  }
}

describe('migrations', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let ds: DataSource;
  beforeAll(async () => {
    db = await createTestDatabase(false);
    ds = new DataSource(dataSourceOptions(db.url, 2, false));
    await ds.initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it('go up, down and up again, leaving the same catalog each time', async () => {
    const empty = await catalog(db.url);
    await ds.runMigrations({ transaction: 'each' });
    const up = await catalog(db.url);

    // No extension, neither when TypeORM connects nor from the migrations (README: gen_random_uuid()
    // is built in from PostgreSQL 13, the hashes use the core sha256()).
    expect(empty.extensions).toEqual(['plpgsql']);
    expect(up.extensions).toEqual(['plpgsql']);

    expect(up.tables).toEqual([
      'dq_baseline',
      'dq_baseline_books',
      'dq_baseline_issues',
      'execution_logs',
      'fill_corrections',
      'fills',
      'log_checkpoints',
      'log_leaves',
      'log_tree_state',
      'merkle_nodes',
      'orders',
      'positions',
      'traders',
      'typeorm_migrations',
    ]);
    const has = (kind: string, text: string | RegExp): void => {
      const hit = up[kind].some((x) => (typeof text === 'string' ? x.includes(text) : text.test(x)));
      if (!hit) throw new Error(`catalog ${kind} lacks ${text}:\n${up[kind].join('\n')}`);
    };
    // DOMAIN.md §1, the points the issue names.
    has('columns', /^orders\.position_id uuid YES/);
    has(
      'constraints',
      'orders fk_orders_position FOREIGN KEY (position_id) REFERENCES positions(id) ON DELETE SET NULL',
    );
    has('constraints', 'fills fk_fills_order FOREIGN KEY (order_id) REFERENCES orders(id) ON DELETE CASCADE');
    has('constraints', 'fills fk_fills_position FOREIGN KEY (position_id) REFERENCES positions(id) ON DELETE SET NULL');
    has('indexes', 'CREATE INDEX idx_orders_position_id ON public.orders USING btree (position_id)');
    has('indexes', 'CREATE INDEX idx_orders_position_created ON public.orders USING btree (position_id, created_at)');
    has('indexes', 'CREATE INDEX idx_orders_trader_created ON public.orders USING btree (trader_id, created_at DESC)');
    has(
      'indexes',
      `CREATE UNIQUE INDEX uq_positions_open_trader_symbol ON public.positions USING btree (trader_id, symbol) WHERE (status = 'OPEN'::position_status)`,
    );
    has(
      'indexes',
      'CREATE UNIQUE INDEX uq_orders_trader_client_order_id ON public.orders USING btree (trader_id, client_order_id)',
    );
    has(
      'indexes',
      'CREATE UNIQUE INDEX uq_execution_logs_order_seq ON public.execution_logs USING btree (order_id, seq)',
    );
    has('indexes', 'CREATE INDEX idx_fills_timestamp ON public.fills USING btree (executed_at DESC)');
    has(
      'constraints',
      `orders chk_orders_limit_requires_price CHECK (((order_type <> ALL (ARRAY['LIMIT'::order_type, 'STOP_LIMIT'::order_type])) OR (price IS NOT NULL)))`,
    );
    has('constraints', 'orders chk_orders_filled_quantity_max CHECK ((filled_quantity <= quantity))');
    has('triggers', 'execution_logs execution_logs_no_update_delete');
    has('triggers', 'fill_corrections fill_corrections_no_update_delete');
    // The verifiable log: append-only leaves, nodes and checkpoints; only the integrator writes them.
    for (const table of ['log_leaves', 'merkle_nodes', 'log_checkpoints']) {
      has('triggers', `${table} ${table}_no_update_delete`);
      has('triggers', `${table} ${table}_no_truncate`);
    }
    has('columns', /^execution_logs\.seal character YES/);
    has('columns', /^execution_logs\.tx bigint\(64,0\) NO/);
    // The role requests run as: SELECT and INSERT only on the log.
    expect(up.grants).toEqual([
      // The data-quality baseline: written by reports (row-level security: compliance and admin only).
      'dq_baseline DELETE,INSERT,SELECT,UPDATE',
      'dq_baseline_books DELETE,INSERT,SELECT,UPDATE',
      'dq_baseline_issues DELETE,INSERT,SELECT,UPDATE',
      'execution_logs INSERT,SELECT',
      'fill_corrections INSERT,SELECT',
      'fills INSERT,SELECT,UPDATE',
      'log_checkpoints SELECT',
      'log_leaves SELECT',
      'log_tree_state SELECT',
      'merkle_nodes SELECT',
      'orders INSERT,SELECT,UPDATE',
      'positions DELETE,INSERT,SELECT,UPDATE',
      'traders INSERT,SELECT,UPDATE',
    ]);
    has('triggers', 'execution_logs execution_logs_no_truncate');
    has('types', 'order_status PENDING,ACCEPTED,PARTIAL,FILLED,CANCELLED,REJECTED,EXPIRED,REPLACED');
    // Exact types everywhere: no float, no timestamp without time zone.
    expect(up.columns.filter((c) => / (double precision|real|timestamp without time zone)[ (]/.test(c))).toEqual([]);
    for (const col of [
      'positions.quantity',
      'orders.price',
      'orders.quantity',
      'fills.price',
      'fills.quantity',
      'fills.commission',
      'positions.realized_pnl',
      'orders.average_fill_price',
    ]) {
      has('columns', new RegExp(`^${col.replace('.', '\\.')} numeric`));
    }

    // Down: back to nothing but the migrations table.
    while ((await ds.query(`SELECT count(*)::int AS n FROM typeorm_migrations`))[0].n > 0)
      await ds.undoLastMigration({ transaction: 'each' });
    const down = await catalog(db.url);
    expect({
      ...down,
      tables: down.tables.filter((t) => t !== 'typeorm_migrations'),
      columns: down.columns.filter((c) => !c.startsWith('typeorm_migrations.')),
      constraints: down.constraints.filter((c) => !c.startsWith('typeorm_migrations')),
      indexes: down.indexes.filter((c) => !c.includes('typeorm_migrations')),
    }).toEqual(empty);

    await ds.runMigrations({ transaction: 'each' });
    expect(await catalog(db.url)).toEqual(up);
  });

  it('match the entities: TypeORM finds no difference to generate', async () => {
    // What `migration:generate --check` does: compare entity metadata with a migrated database.
    const migrated = await createTestDatabase(true);
    const other = new DataSource(dataSourceOptions(migrated.url, 2, false));
    await other.initialize();
    try {
      expect(await other.showMigrations()).toBe(false);
      const sql = await other.driver.createSchemaBuilder().log();
      expect(sql.upQueries.map((q) => q.query)).toEqual([]);
    } finally {
      await other.destroy();
      await migrated.drop();
    }
  });
});
