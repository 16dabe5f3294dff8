import { prepareValue } from 'pg/lib/utils';

/**
 * A statement's parameters as the wire protocol's Bind message carries them, after the portal and
 * statement names: format codes, the values (each a length and its bytes; -1 for NULL), and the
 * result format codes (none: text). Values are converted as node-postgres converts them
 * (prepareValue: arrays to array literals, dates to timestamps, objects to JSON), so both drivers
 * send the same text.
 *
 * The embedded driver encodes on the calling thread and hands the bytes over (transferred, not
 * copied) to the database thread (pglite-worker.cjs), which is the busier of the two while
 * writing: encoding a bundle's resource texts there (a byte count in JavaScript, then a copy)
 * took ~15 % of that thread's time during an import.
 */
export function encodeBindParams(params: readonly unknown[]): Uint8Array {
  const n = params.length;
  if (n > 0xffff) {
    throw new Error(`too many statement parameters (${n}; at most 65535)`);
  }
  const values: (string | Uint8Array | null)[] = new Array(n);
  const lengths: number[] = new Array(n);
  let binary = false;
  // parameter format count + result format count + value count
  let size = 6;
  for (let i = 0; i < n; i++) {
    const v = prepareValue(params[i]);
    values[i] = v;
    if (v === null) {
      lengths[i] = -1;
    } else if (typeof v === 'string') {
      lengths[i] = Buffer.byteLength(v, 'utf8');
    } else {
      binary = true;
      lengths[i] = v.byteLength;
    }
    size += 4 + Math.max(lengths[i], 0);
  }
  if (binary) {
    size += 2 * n;
  }
  // An ArrayBuffer of its own (not Buffer's shared pool), so that it can be transferred.
  const out = Buffer.from(new ArrayBuffer(size));
  let at = 0;
  if (binary) {
    at = out.writeUInt16BE(n, at);
    for (const v of values) {
      at = out.writeInt16BE(v !== null && typeof v !== 'string' ? 1 : 0, at);
    }
  } else {
    at = out.writeUInt16BE(0, at); // no codes: every parameter is text
  }
  at = out.writeUInt16BE(n, at);
  for (let i = 0; i < n; i++) {
    at = out.writeInt32BE(lengths[i], at);
    const v = values[i];
    if (typeof v === 'string') {
      at += out.write(v, at, 'utf8');
    } else if (v !== null) {
      out.set(v, at);
      at += v.byteLength;
    }
  }
  out.writeInt16BE(0, at); // result columns: text
  return out;
}
