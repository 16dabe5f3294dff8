import { randomFillSync } from 'node:crypto';

/**
 * Server-assigned resource ids: UUID version 7 (RFC 9562), a 48-bit Unix millisecond timestamp
 * followed by random bits, so that ids assigned one after another sort one after another.
 *
 * Why not version 4: every resource is found through B-tree indexes that start with its id
 * (`resource_current`'s primary key, each search table's owner index). Random ids put each new
 * entry, and each later lookup of resources written together (a bundle, a patient's observations),
 * on a random leaf page; time-ordered ids put them on the same few pages, so a write dirties fewer
 * pages and a read of related resources misses the buffer pool less.
 *
 * Within one millisecond the 12 bits after the version (`rand_a`) count up from a random start
 * (RFC 9562 section 6.2, method 1), so ids from one process are strictly increasing; when the
 * counter runs out the timestamp moves on by one millisecond. The remaining 62 bits are random.
 *
 * An id reveals when it was assigned, to the millisecond; so does `meta.lastUpdated` of version 1.
 */
const pool = Buffer.alloc(16 * 256);
let poolOffset = pool.length;
let lastMs = 0;
let counter = 0;

function randomBytes16(): Buffer {
  if (poolOffset >= pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const b = pool.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  return b;
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** A new UUIDv7 string, e.g. `019ade3c-5a1e-7c3b-9f2e-0d4c8b6a1e27`. `now` is for tests. */
export function newResourceId(now: number = Date.now()): string {
  const b = randomBytes16();
  if (now > lastMs) {
    lastMs = now;
    counter = ((b[6] & 0x07) << 8) | b[7]; // a random start in the lower half leaves room to count
  } else if (++counter > 0xfff) {
    lastMs += 1;
    counter = ((b[6] & 0x07) << 8) | b[7];
  }
  const ms = lastMs;
  // 48-bit timestamp, big-endian (Math.floor division: the value exceeds 32 bits).
  const hi = Math.floor(ms / 0x1000000);
  const lo = ms % 0x1000000;
  b[0] = (hi >>> 16) & 0xff;
  b[1] = (hi >>> 8) & 0xff;
  b[2] = hi & 0xff;
  b[3] = (lo >>> 16) & 0xff;
  b[4] = (lo >>> 8) & 0xff;
  b[5] = lo & 0xff;
  b[6] = 0x70 | (counter >>> 8);
  b[7] = counter & 0xff;
  b[8] = 0x80 | (b[8] & 0x3f);
  let s = '';
  for (let i = 0; i < 16; i++) {
    s += HEX[b[i]];
    if (i === 3 || i === 5 || i === 7 || i === 9) {
      s += '-';
    }
  }
  return s;
}
