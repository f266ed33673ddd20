import type { QueryRunner } from 'typeorm';
import { binaryRows } from '../src/db/binary-fetch';
import { ByteWriter, numericText, RecordReader, timestamptzText, uuidText, writeJson } from '../src/db/binary-values';
import { createTestDatabase, startTestApp, type TestApp } from './harness';

/**
 * Rows of a BINARY cursor read as raw bytes (binary-fetch.ts) and their values written as PostgreSQL
 * would print them (binary-values.ts): every value checked against PostgreSQL's own text of it.
 */
describe('binary rows and values', () => {
  let app: TestApp;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    app = await startTestApp(db.url, { poolMax: 1 });
  });
  afterAll(async () => {
    await app.close();
    await drop();
  });

  /** Runs `body` in a transaction on the app's one connection. */
  const inTransaction = async <T>(body: (runner: QueryRunner) => Promise<T>): Promise<T> => {
    const runner = app.dataSource.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    try {
      return await body(runner);
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
  };

  /** The binary value of each row's one field, next to PostgreSQL's text for it. */
  const binaryAndText = (values: string, type: string, text: string) =>
    inTransaction(async (runner) => {
      const texts = (await runner.query(`SELECT ${text} AS t FROM (VALUES ${values}) v(x) ORDER BY 1`)) as {
        t: string | null;
      }[];
      await runner.query(
        `DECLARE c BINARY NO SCROLL CURSOR FOR SELECT x::${type} FROM (VALUES ${values}) v(x) ORDER BY ${text}`,
      );
      const rows = await binaryRows(runner, 'FETCH ALL FROM c');
      return rows.map((r, i) => ({ field: r[0], text: texts[i].t }));
    });

  it('writes numerics exactly as numeric_out does, every digit of the scale', async () => {
    const values = [
      '0',
      '0.000000000',
      '-0.5',
      '1',
      '20.000000000',
      '415.310000000',
      '-1.5',
      '10000',
      '99999999.999999999',
      '123456789012345678901.000000001',
      '0.0001',
      '0.00000001',
      '-0.000000001',
      '1e-20',
      '1234.5678',
      '100000000',
      '-9999.9999',
      '5000.00',
      'NaN',
      'Infinity',
      '-Infinity',
    ]
      .map((v) => `('${v}'::numeric)`)
      .join(', ');
    const rows = await binaryAndText(values, 'numeric', 'x::numeric::text');
    expect(rows).toHaveLength(21);
    for (const { field, text } of rows) {
      expect(numericText(field!, 0)).toBe(text);
      const out = new ByteWriter(16);
      out.numeric(field!, 0);
      expect(out.take().toString('latin1')).toBe(text);
    }
  });

  it('writes times as UTC with microseconds, as to_char does', async () => {
    const values = [
      '1970-01-01 00:00:00+00',
      '1999-12-31 23:59:59.999999+00',
      '2000-01-01 00:00:00+00',
      '2000-02-29 12:00:00.5+00',
      '2026-11-17 17:30:00.000001+01',
      '2100-03-01 00:00:00.123+00',
      '2199-12-31 23:59:59.999999+00',
      '1980-06-15 08:09:10.010203-07',
      'infinity',
      '-infinity',
    ]
      .map((v) => `('${v}'::timestamptz)`)
      .join(', ');
    const rows = await binaryAndText(
      values,
      'timestamptz',
      `to_char(x::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
    );
    expect(rows).toHaveLength(10);
    for (const { field, text } of rows) {
      expect(timestamptzText(field!, 0)).toBe(text);
      const out = new ByteWriter(4);
      expect(out.timestamptz(field!, 0)).toBe(text !== null);
      expect(out.take().toString('latin1')).toBe(text ?? '');
    }
  });

  it('writes uuids in canonical form', async () => {
    const rows = await binaryAndText(
      `('6F1C0C3C-2B1A-4C8E-9F5D-0A1B2C3D4E5F'), ('00000000-0000-0000-0000-000000000000'), ('ffffffff-ffff-ffff-ffff-ffffffffffff'), ('{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}')`,
      'uuid',
      'x::uuid::text',
    );
    expect(rows).toHaveLength(4);
    for (const { field, text } of rows) expect(uuidText(field!, 0)).toBe(text);
  });

  it('writes a record’s fields as row_to_json writes them (strings escaped, json as is, numbers as numbers)', async () => {
    const odd = `E'quote " backslash \\\\ tab \\t newline \\n bell \\007 é ü 日本 😀'`;
    const select = `SELECT 'plain'::text AS a, ${odd}::varchar AS b, NULL::text AS c, 42 AS d, -7::int2 AS e,
      9007199254740993::int8 AS f, true AS g, '{"price": "415.25", "n": [1, 2.5]}'::jsonb AS h, '[1,  2]'::json AS i,
      'abc'::char(5) AS j, '12.50'::numeric AS k, '2026-11-17 17:30:00.000001+00'::timestamptz AS l,
      '6f1c0c3c-2b1a-4c8e-9f5d-0a1b2c3d4e5f'::uuid AS m`;
    await inTransaction(async (runner) => {
      const [{ json }] = (await runner.query(
        `SELECT row_to_json(r)::text AS json FROM (${select
          .replace(
            `'2026-11-17 17:30:00.000001+00'::timestamptz AS l`,
            `to_char('2026-11-17 17:30:00.000001+00'::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS l`,
          )
          .replace(`'12.50'::numeric AS k`, `'12.50'::numeric::text AS k`)}) r`,
      )) as { json: string }[];
      await runner.query(
        `DECLARE c BINARY NO SCROLL CURSOR FOR SELECT ROW(a, b, c, d, e, f, g, h, i, j, k, l, m) FROM (${select}) s`,
      );
      const [[record]] = await binaryRows(runner, 'FETCH ALL FROM c');
      const keys = Object.keys(JSON.parse(json) as object);
      const reader = new RecordReader();
      expect(reader.open(record!, 0)).toBe(keys.length);
      const viaStrings: string[] = [];
      const viaBytes = new ByteWriter(8);
      const values: Record<string, unknown> = {};
      for (const key of keys) {
        reader.next();
        viaStrings.push(`"${key}":${reader.json()}`);
        viaBytes.ascii(`${viaBytes.at === 0 ? '' : ','}"${key}":`);
        writeJson(reader, viaBytes);
        values[key] = reader.value();
      }
      expect(`{${viaStrings.join(',')}}`).toBe(json);
      expect(`{${viaBytes.take().toString('utf8')}}`).toBe(json);
      // The values are what JSON.parse makes of PostgreSQL's JSON (except int8 beyond 2^53: exact as text).
      expect(values).toEqual({ ...(JSON.parse(json) as object), f: 9007199254740992 });
    });
  });

  it('reads rows that span many chunks of the connection, with notices between them, and then the connection works on', async () => {
    await inTransaction(async (runner) => {
      await runner.query(`CREATE FUNCTION pg_temp.noisy(i int) RETURNS int LANGUAGE plpgsql AS
        $$ BEGIN IF i % 100 = 0 THEN RAISE NOTICE 'row %', i; END IF; RETURN i; END $$`);
      await runner.query(
        `DECLARE c BINARY NO SCROLL CURSOR FOR SELECT pg_temp.noisy(i), repeat(md5(i::text), CASE WHEN i % 1000 = 0 THEN 10000 ELSE 1 + i % 700 END) FROM generate_series(1, 3000) i`,
      );
      const rows = await binaryRows(runner, 'FETCH ALL FROM c');
      expect(rows).toHaveLength(3000);
      rows.forEach(([n, text], i) => {
        expect(n!.readInt32BE(0)).toBe(i + 1);
        // Rows of up to 22 kB, and every 1,000th of 320 kB (across several chunks of the connection).
        expect(text!.length).toBe(32 * ((i + 1) % 1000 === 0 ? 10000 : 1 + ((i + 1) % 700)));
      });
      expect(await runner.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      expect(await binaryRows(runner, 'FETCH ALL FROM c')).toEqual([]);
    });
  });

  it('fails with PostgreSQL’s error part-way through, and the connection works on', async () => {
    await inTransaction(async (runner) => {
      await runner.query(`DECLARE c BINARY NO SCROLL CURSOR FOR SELECT 10 / (500 - i) FROM generate_series(1, 1000) i`);
      await expect(binaryRows(runner, 'FETCH ALL FROM c')).rejects.toThrow('division by zero');
    });
    // The same (only) connection, in a new transaction.
    await inTransaction(async (runner) => {
      expect(await runner.query('SELECT 2 AS two')).toEqual([{ two: 2 }]);
    });
  });
});
