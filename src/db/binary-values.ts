/**
 * Values in PostgreSQL's binary format (the `send` functions of its types), read into the text
 * PostgreSQL itself would print: exact numerics as `numeric_out` writes them (every digit of the
 * scale), UUIDs in their canonical form, times as UTC with microseconds. For reading rows of a BINARY
 * cursor (binary-fetch.ts) without a text round trip through the database's output functions.
 */

/** Type OIDs (pg_type.oid, fixed for built-in types). */
export const OID = {
  bool: 16,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  json: 114,
  bpchar: 1042,
  varchar: 1043,
  timestamptz: 1184,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

/** A uuid (16 bytes at `at`) as PostgreSQL prints it: lower-case hex, 8-4-4-4-12. */
export function uuidText(b: Buffer, at: number): string {
  const h = b.toString('hex', at, at + 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const NUMERIC_NEG = 0x4000;
const NUMERIC_NAN = 0xc000;
const NUMERIC_PINF = 0xd000;
const NUMERIC_NINF = 0xf000;

/**
 * A numeric as `numeric_out` prints it: base-10000 digit groups (int16 count, int16 weight of the
 * first, uint16 sign, uint16 display scale, then the groups), written with exactly `dscale` digits
 * after the point (`20.000000000`), never through a float.
 */
export function numericText(b: Buffer, at: number): string {
  const out = new ByteWriter(32);
  out.numeric(b, at);
  return out.take().toString('latin1');
}

/**
 * A timestamptz (int64 microseconds since 2000-01-01 UTC) as `YYYY-MM-DDTHH:MI:SS.ffffffZ`, what
 * `to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` gives; null for ±infinity (as
 * to_char gives).
 */
export function timestamptzText(b: Buffer, at: number): string | null {
  const out = new ByteWriter(32);
  return out.timestamptz(b, at) ? out.take().toString('latin1') : null;
}

/** Where a binary jsonb's text starts: after its format version, 1 (the only one PostgreSQL has had). */
function jsonbText(b: Buffer, at: number): number {
  if (b[at] !== 1) throw new Error(`a jsonb value in binary format version ${b[at]}, which this reader does not know`);
  return at + 1;
}

/** An int8 as its decimal text (exact beyond 2^53). */
export function int8Text(b: Buffer, at: number): string {
  const high = b.readInt32BE(at);
  const low = b.readUInt32BE(at + 4);
  const value = high * 2 ** 32 + low;
  return Number.isSafeInteger(value) ? String(value) : b.readBigInt64BE(at).toString();
}

/**
 * The fields of a binary record (`ROW(…)`: int32 count, then per field its type OID, int32 length or
 * -1 for NULL, and its bytes), read one at a time.
 */
export class RecordReader {
  buf!: Buffer;
  /** Where the next field starts. */
  at = 0;
  /** The current field: type, first byte, end (start -1 for NULL). */
  oid = 0;
  start = 0;
  end = 0;

  /** Starts on the record whose bytes start at `at`; returns its number of fields. */
  open(buf: Buffer, at: number): number {
    this.buf = buf;
    this.at = at + 4;
    return buf.readInt32BE(at);
  }

  /** Moves to the next field; false when it is NULL. */
  next(): boolean {
    const b = this.buf;
    const at = this.at;
    // Read byte by byte: cheaper than Buffer's checked readers, millions of times per export.
    this.oid = ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
    const length = (b[at + 4] << 24) | (b[at + 5] << 16) | (b[at + 6] << 8) | b[at + 7];
    this.at = at + 8;
    if (length < 0) {
      this.start = -1;
      this.end = -1;
      return false;
    }
    this.start = this.at;
    this.end = this.at += length;
    return true;
  }

  /** The current field as JSON text (null, a number, a string; json and jsonb as they are): see writeJson. */
  json(): string {
    const out = new ByteWriter(64);
    writeJson(this, out);
    return out.take().toString('utf8');
  }

  /** The current field as the value JSON.parse gives for its JSON text (numerics and times as strings). */
  value(): unknown {
    if (this.start < 0) return null;
    const b = this.buf;
    const s = this.start;
    switch (this.oid) {
      case OID.uuid:
        return uuidText(b, s);
      case OID.text:
      case OID.varchar:
      case OID.bpchar:
        return b.toString('utf8', s, this.end);
      case OID.numeric:
        return numericText(b, s);
      case OID.timestamptz:
        return timestamptzText(b, s);
      case OID.int4:
        return b.readInt32BE(s);
      case OID.int2:
        return b.readInt16BE(s);
      case OID.bool:
        return b[s] !== 0;
      case OID.jsonb:
        return JSON.parse(b.toString('utf8', jsonbText(b, s), this.end)) as unknown;
      default:
        return JSON.parse(this.json()) as unknown;
    }
  }
}

/**
 * The elements of a one-dimensional binary array (int32 dimensions, int32 has-nulls flag, element
 * OID, per dimension its length and lower bound, then each element as int32 length and bytes): the
 * start of each element, null for a NULL one.
 */
export function arrayElements(b: Buffer, at: number): (number | null)[] {
  const dimensions = b.readInt32BE(at);
  if (dimensions === 0) return [];
  if (dimensions !== 1) throw new Error(`expected a one-dimensional array, got ${dimensions} dimensions`);
  const length = b.readInt32BE(at + 12);
  let p = at + 20;
  const starts: (number | null)[] = new Array(length);
  for (let i = 0; i < length; i++) {
    const size = b.readInt32BE(p);
    p += 4;
    starts[i] = size < 0 ? null : p;
    if (size > 0) p += size;
  }
  return starts;
}

const DIGIT0 = 0x30;
const EMPTY = Buffer.alloc(0);
const NULL = Buffer.from('null', 'latin1');
const QUOTE = 0x22;
/** '0'–'9', 'a'–'f'. */
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
/** Two ASCII digits of 0–99. */
const TWO_DIGITS = Buffer.from(Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0')).join(''), 'latin1');

/** Days since 1970-01-01 to [year, month, day] (proleptic Gregorian; Howard Hinnant's civil_from_days). */
function civilFromDays(z: number): [number, number, number] {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

/**
 * Bytes written into one growing buffer: a batch of output (NDJSON, CSV) built without a string per
 * value. `take()` hands the bytes over and starts a new buffer (the old one may still be in a socket's
 * queue).
 */
export class ByteWriter {
  buf: Buffer;
  at = 0;
  /** `pool`: where its first buffer comes from (one of the pool's size), and goes back to once written out. */
  constructor(
    private readonly size = 1 << 20,
    pool?: BufferPool,
  ) {
    this.buf = pool && pool.size === size ? pool.get() : Buffer.allocUnsafe(size);
  }

  /** Room for `n` more bytes. */
  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n, this.size));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }

  /** Text that is ASCII (keys, punctuation, numbers). */
  ascii(text: string): void {
    this.room(text.length);
    this.at += this.buf.write(text, this.at, 'latin1');
  }

  /** Any text, as UTF-8. */
  utf8(text: string): void {
    this.room(Buffer.byteLength(text));
    this.at += this.buf.write(text, this.at, 'utf8');
  }

  bytes(source: Buffer, start = 0, end = source.length): void {
    this.room(end - start);
    if (end - start > 48) {
      this.at += source.copy(this.buf, this.at, start, end);
      return;
    }
    // Short pieces (keys, ids, enum values) copied here: cheaper than a call into Buffer#copy.
    const out = this.buf;
    let at = this.at;
    for (let i = start; i < end; i++) out[at++] = source[i];
    this.at = at;
  }

  /** A safe integer in decimal (a leaf index, a sequence number), without a string. */
  int(n: number): void {
    this.room(17);
    const out = this.buf;
    if (n < 0) {
      out[this.at++] = 0x2d;
      n = -n;
    }
    let digits = 1;
    for (let p = 10; p <= n; p *= 10) digits++;
    for (let i = this.at + digits - 1; i >= this.at; i--) {
      out[i] = DIGIT0 + (n % 10);
      n = Math.floor(n / 10);
    }
    this.at += digits;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.at++] = b;
  }

  /** Bytes as lower-case hex. */
  hex(source: Buffer, start = 0, end = source.length): void {
    this.room(2 * (end - start));
    const out = this.buf;
    let at = this.at;
    for (let i = start; i < end; i++) {
      out[at++] = HEX_DIGITS[source[i] >> 4];
      out[at++] = HEX_DIGITS[source[i] & 15];
    }
    this.at = at;
  }

  /** Two digits (0–99). */
  private two(n: number): void {
    this.buf[this.at++] = TWO_DIGITS[2 * n];
    this.buf[this.at++] = TWO_DIGITS[2 * n + 1];
  }

  /** A uuid's 16 bytes in canonical form (36 characters). */
  uuid(b: Buffer, at: number): void {
    this.hex(b, at, at + 4);
    this.byte(0x2d);
    this.hex(b, at + 4, at + 6);
    this.byte(0x2d);
    this.hex(b, at + 6, at + 8);
    this.byte(0x2d);
    this.hex(b, at + 8, at + 10);
    this.byte(0x2d);
    this.hex(b, at + 10, at + 16);
  }

  /** A numeric as numericText writes it. */
  numeric(b: Buffer, at: number): void {
    const ndigits = b.readInt16BE(at);
    const weight = b.readInt16BE(at + 2);
    const sign = b.readUInt16BE(at + 4);
    const dscale = b.readUInt16BE(at + 6);
    if (sign === NUMERIC_NAN) return this.ascii('NaN');
    if (sign === NUMERIC_PINF) return this.ascii('Infinity');
    if (sign === NUMERIC_NINF) return this.ascii('-Infinity');
    // At most: sign, the integer groups, the point and the scale's digits.
    this.room(2 + 4 * Math.max(weight + 1, 1) + dscale);
    const out = this.buf;
    const digit = (i: number): number => (i >= 0 && i < ndigits ? b.readInt16BE(at + 8 + 2 * i) : 0);
    if (sign === NUMERIC_NEG) out[this.at++] = 0x2d;
    if (weight < 0) out[this.at++] = DIGIT0;
    else {
      const first = digit(0);
      if (first >= 1000) out[this.at++] = DIGIT0 + Math.floor(first / 1000);
      if (first >= 100) out[this.at++] = DIGIT0 + (Math.floor(first / 100) % 10);
      if (first >= 10) out[this.at++] = DIGIT0 + (Math.floor(first / 10) % 10);
      out[this.at++] = DIGIT0 + (first % 10);
      for (let i = 1; i <= weight; i++) {
        const g = digit(i);
        this.two(Math.floor(g / 100));
        this.two(g % 100);
      }
    }
    if (dscale > 0) {
      out[this.at++] = 0x2e;
      let left = dscale;
      for (let i = weight + 1; left > 0; i++) {
        const g = digit(i);
        for (let divisor = 1000; divisor >= 1 && left > 0; divisor /= 10, left--) {
          out[this.at++] = DIGIT0 + (Math.floor(g / divisor) % 10);
        }
      }
    }
  }

  /** A timestamptz as timestamptzText writes it (false, nothing written, for ±infinity). */
  timestamptz(b: Buffer, at: number): boolean {
    const high = b.readInt32BE(at);
    const low = b.readUInt32BE(at + 4);
    if ((high === 0x7fffffff && low === 0xffffffff) || (high === -0x80000000 && low === 0)) return false;
    const micros = high * 2 ** 32 + low; // from 2000-01-01
    const days = Math.floor(micros / 86_400_000_000);
    const inDay = micros - days * 86_400_000_000;
    const [year, month, day] = civilFromDays(days + 10957); // 2000-01-01 is day 10957 after 1970-01-01
    this.room(32);
    // Four digits, as to_char's YYYY (the schema keeps times in 1970–2199); more when there are more.
    if (year > 9999 || year < 0) this.int(year);
    else {
      this.two(Math.floor(year / 100));
      this.two(year % 100);
    }
    this.byte(0x2d);
    this.two(month);
    this.byte(0x2d);
    this.two(day);
    this.byte(0x54); // T
    const seconds = Math.floor(inDay / 1_000_000);
    const micro = inDay - seconds * 1_000_000;
    this.two(Math.floor(seconds / 3600));
    this.byte(0x3a);
    this.two(Math.floor(seconds / 60) % 60);
    this.byte(0x3a);
    this.two(seconds % 60);
    this.byte(0x2e);
    this.two(Math.floor(micro / 10_000));
    this.two(Math.floor(micro / 100) % 100);
    this.two(micro % 100);
    this.byte(0x5a); // Z
    return true;
  }

  /** Hands over what was written; the next write starts a fresh buffer. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.at);
    this.buf = EMPTY;
    this.at = 0;
    return out;
  }
}

/**
 * Buffers of one size, used again once their bytes are written out: an export's batches are built
 * in a few buffers instead of a new one per batch (memory outside the JavaScript heap that only a
 * garbage collection gives back).
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  constructor(
    readonly size: number,
    private readonly keep = 4,
  ) {}
  get(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.size);
  }
  /** Gives back the buffer under `bytes` (a view that `take` returned) once nothing reads it any more. */
  release(bytes: Buffer): void {
    if (bytes.byteOffset === 0 && bytes.buffer.byteLength === this.size && this.free.length < this.keep) {
      this.free.push(Buffer.from(bytes.buffer, 0, this.size));
    }
  }
}

/** Whether UTF-8 text needs escaping in a JSON string (a quote, a backslash or a control character). */
function needsJsonEscape(b: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = b[i];
    if (c < 0x20 || c === QUOTE || c === 0x5c) return true;
  }
  return false;
}

/** The reader's current field written as JSON, as RecordReader.json gives it, without a string per value. */
export function writeJson(reader: RecordReader, out: ByteWriter): void {
  const b = reader.buf;
  const s = reader.start;
  if (s < 0) return out.bytes(NULL);
  switch (reader.oid) {
    case OID.uuid:
      out.room(38);
      out.byte(QUOTE);
      out.uuid(b, s);
      return out.byte(QUOTE);
    case OID.text:
    case OID.varchar:
    case OID.bpchar:
      if (needsJsonEscape(b, s, reader.end)) return out.utf8(JSON.stringify(b.toString('utf8', s, reader.end)));
      out.byte(QUOTE);
      out.bytes(b, s, reader.end);
      return out.byte(QUOTE);
    case OID.numeric:
      out.byte(QUOTE);
      out.numeric(b, s);
      return out.byte(QUOTE);
    case OID.timestamptz:
      out.byte(QUOTE);
      if (out.timestamptz(b, s)) return out.byte(QUOTE);
      out.at -= 1;
      return out.bytes(NULL);
    case OID.int4:
      return out.int(b.readInt32BE(s));
    case OID.int2:
      return out.int(b.readInt16BE(s));
    case OID.jsonb:
      return out.bytes(b, jsonbText(b, s), reader.end);
    case OID.json:
      return out.bytes(b, s, reader.end);
    case OID.int8:
      return out.ascii(int8Text(b, s));
    case OID.bool:
      return out.ascii(b[s] ? 'true' : 'false');
    default:
      throw new Error(`a record field of type OID ${reader.oid} has no JSON form here`);
  }
}
