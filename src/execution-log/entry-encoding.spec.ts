import canonicalize from 'canonicalize';
import { type CanonicalEntry, computeSeal, entryText, sealText } from './entry-encoding';

/** The fast record encoders are RFC 8785 (checked against the `canonicalize` reference). */
const entry = (over: Partial<CanonicalEntry> = {}): CanonicalEntry => ({
  id: '0b6a3c51-8a1e-4a55-9b0e-1d1f7a7f6c01',
  orderId: '7f1c2a90-3b4d-4e5f-8a6b-7c8d9e0f1a2b',
  traderId: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d',
  seq: 3,
  action: 'EXECUTED',
  fromStatus: 'ACCEPTED',
  toStatus: 'PARTIAL',
  reason: null,
  errorCode: null,
  retryAttempt: null,
  actor: 'gateway',
  source: 'API',
  details: { quantity: '4', price: '410.5', nested: { b: [1, 2.5, 'x', null], a: true }, é: 'ü', A: -0 },
  occurredAt: '2026-06-01T14:00:01.000000Z',
  recordedAt: '2026-06-01T14:00:01.123456Z',
  prevHash: 'a'.repeat(64),
  hash: 'b'.repeat(64),
  seal: 'c'.repeat(64),
  ...over,
});

describe('entry encoding', () => {
  it.each([
    ['a plain entry', entry()],
    [
      'null details and texts with quotes, control characters and non-ASCII',
      entry({ details: null, reason: 'a "b"\n\u0001 ☃ \u2028' }),
    ],
    ['numbers', entry({ seq: 1, retryAttempt: 0, details: { n: 1e21, m: 0.1 + 0.2, k: -5e-7 } })],
  ])('%s: leaf text and seal text equal canonicalize()', (_name, e) => {
    expect(entryText(e)).toBe(canonicalize({ ...e, v: 1 }));
    const { seq: _s, retryAttempt: _r, recordedAt: _t, prevHash: _p, hash: _h, seal: _x, ...sealed } = e;
    expect(sealText(e)).toBe(canonicalize({ ...sealed, v: 1 }));
  });

  it('encodes random nested JSON exactly as canonicalize() does (fixed seed)', () => {
    let seed = 20261125;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const chars = ['a', 'B', 'é', '☃', '"', '\\', '\n', '\u0000', '\u2028', '😀', '\ud800', 'Z', '_', '1'];
    const text = () =>
      Array.from({ length: Math.floor(rand() * 6) }, () => chars[Math.floor(rand() * chars.length)]).join('');
    const value = (depth: number): unknown => {
      const r = rand();
      if (depth > 3 || r < 0.5) {
        return [
          null,
          true,
          false,
          text(),
          Math.floor(rand() * 2e6) - 1e6,
          (rand() - 0.5) * 10 ** Math.floor(rand() * 40 - 20),
        ][Math.floor(rand() * 6)];
      }
      if (r < 0.7) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rand() * 5) }, () => [text(), value(depth + 1)]));
    };
    for (let i = 0; i < 2000; i++) {
      const details = { k: value(0) } as CanonicalEntry['details'];
      const e = entry({ details });
      expect(entryText(e)).toBe(canonicalize({ ...e, v: 1 }));
    }
  });

  it('seals what the database gives back the same as what the server sent', () => {
    const sent = entry({ details: { a: undefined, b: [undefined, 1], c: { toJSON: () => 'x' } } as never });
    const back = entry({ details: JSON.parse(JSON.stringify(sent.details)) as never });
    const key = Buffer.alloc(32, 9);
    expect(computeSeal(key, sent)).toBe(computeSeal(key, back));
    expect(computeSeal(key, sent)).not.toBe(computeSeal(key, entry({ ...back, reason: 'changed' })));
  });
});
