import { newResourceId } from '../../src/fhir/ids';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The millisecond timestamp a UUIDv7 carries (undefined for any other string). */
function uuidv7Time(id: string): number | undefined {
  return V7.test(id) ? parseInt(id.slice(0, 8) + id.slice(9, 13), 16) : undefined;
}

describe('newResourceId (UUID version 7)', () => {
  it('is a version 7, RFC 9562 variant UUID carrying the time it was made', () => {
    const t = Date.UTC(2026, 11, 3, 18, 30, 0, 123);
    const id = newResourceId(t + 10_000_000); // later than any id made so far in this process
    expect(id).toMatch(V7);
    expect(uuidv7Time(id)).toBe(t + 10_000_000);
  });

  it('encodes the 48-bit millisecond timestamp big-endian', () => {
    // 0x0123456789ab ms is in the year 2009; pass a later time first so the counter logic is not involved
    const far = 0xfff0_0000_0000;
    const id = newResourceId(far);
    expect(id.slice(0, 13)).toBe('fff00000-0000');
    expect(uuidv7Time(id)).toBe(far);
  });

  it('keeps increasing within one millisecond and when the clock goes back', () => {
    const base = 0xfff1_0000_0000;
    const ids = [newResourceId(base)];
    for (let i = 0; i < 5000; i++) {
      ids.push(newResourceId(i % 3 === 0 ? base - 1000 : base)); // same or earlier millisecond
    }
    for (let i = 1; i < ids.length; i++) {
      expect(ids[i] > ids[i - 1]).toBe(true);
      expect(ids[i]).toMatch(V7);
    }
    // 5,001 ids cannot all fit one millisecond's 12-bit counter (at most 4,096): time moved on
    expect(uuidv7Time(ids[ids.length - 1])).toBeGreaterThan(base);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('is random after the timestamp and counter', () => {
    const t = 0xfff2_0000_0000;
    const tails = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      tails.add(newResourceId(t + i).slice(19)); // variant nibble + 60 random bits
    }
    expect(tails.size).toBe(1000);
  });

  it('uuidv7Time rejects other strings', () => {
    expect(uuidv7Time('0f0e1c2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b')).toBeUndefined(); // version 4
    expect(uuidv7Time('not-a-uuid')).toBeUndefined();
  });
});
