'use strict';
/*
 * The embedded store's PostgreSQL (PGlite) on its own thread (src/store/postgres/pglite-thread.ts
 * starts it). PGlite runs each statement synchronously in WebAssembly; here that work runs while
 * the main thread parses, validates and indexes the next request, on the machine's other core.
 *
 * Messages in:  { id, op: 'query', sql, bind, tx, prepare?, plan? } | { id, op: 'exec', sql, tx }
 *               { id, op: 'begin', tx } | { id, op: 'end', tx, commit } | { id, op: 'close' }
 *               { id, op: 'stats' } (answers { planSwitches, memory: this thread's V8 heap,
 *               external and ArrayBuffer bytes })
 * Messages out: { id, ok: true, rows? } | { id, ok: false, error: { message, ...fields } }
 *               { ready: true } | { ready: false, error }
 * `tx` names an open transaction (0: none).
 *
 * Statements go to PostgreSQL as one wire-protocol message each (Parse, Bind, Describe, Execute,
 * Sync together) through PGlite's raw protocol entry point, and run synchronously as they arrive:
 * PGlite's own `query()` makes six separate calls into WebAssembly per statement (parse,
 * describe, bind, describe, execute, sync), about 0.15 ms more per statement. Parameters arrive
 * encoded for the Bind message (`bind`: bind-params.ts, on the calling thread, as node-postgres
 * converts them, so both drivers send the same text).
 * A statement sent with `prepare` (its text is one of a small fixed set) is kept as a named
 * prepared statement: parsed once, planned by PostgreSQL's plan cache. One sent with a `plan`
 * too runs under plan_cache_mode set for it: 'generic' (its plan does not depend on its values)
 * is planned once, where the plan cache would plan it again at every execution whenever its
 * estimate for the generic plan is worse than for the custom ones (as for a range condition,
 * whose generic estimate is a fixed fraction of the table); 'custom' is planned with its values
 * every time, where the plan cache could settle on a generic plan that suits some values only.
 * Every other statement runs under the default ('auto'). The mode is changed by a tiny prepared
 * statement in the same message as the statement, only when it differs from the last one set
 * (planMode), so a run of searches of one kind sets it once. Should the statement fail, the
 * setting is undone with the failed transaction, and set again next time.
 *
 * One connection: while a transaction is open, statements of other callers (and other BEGINs)
 * wait here in arrival order until it ends, as PGlite's own transaction lock would make them.
 */
const { parentPort, workerData } = require('node:worker_threads');
const { PGlite, protocol, parse, types } = require('@electric-sql/pglite');
const { closeSync, openSync, readSync, statSync } = require('node:fs');
const { dirname, join } = require('node:path');

const ser = protocol.serialize;
/** Named prepared statements kept at most (a fixed set in practice; beyond this, unnamed). */
const MAX_PREPARED = 500;

let db;
/** SQL text -> prepared statement name. */
const prepared = new Map();
/**
 * Prepared statements that set plan_cache_mode for what a statement asks (prepareSwitches):
 * `plan` 'generic' and 'custom', and the default ('auto') for any other statement.
 */
const PLAN_SWITCH = { generic: 'plan_generic', custom: 'plan_custom', auto: 'plan_reset' };
/**
 * The session's plan_cache_mode as this thread last set it ('auto', 'generic', 'custom'), or
 * undefined when it cannot be known (at start, after a failed statement, a rolled-back
 * transaction or a script): the next statement then sets it whatever it was.
 */
let planMode;
/** How many statements were sent after a change of plan_cache_mode (stats op). */
let planSwitches = 0;
let nextStatement = 1;
/** The transaction holding the connection (0: none), and whether a statement of it failed. */
let holder = 0;
let holderFailed = false;
/** Transactions begun (or whose BEGIN is waiting) and not yet ended. */
const known = new Set();
/** Operations that cannot run yet (the connection is another transaction's), in arrival order. */
const waiting = [];
/** Set when close arrives: it runs once nothing holds or waits for the connection. */
let closing;
let closeRequested = false;

function reply(id, ok, payload) {
  parentPort.postMessage(ok ? { id, ok: true, rows: payload } : { id, ok: false, error: payload });
}

/** An error as plain fields (a DatabaseError's code, detail, ... survive the copy). */
function plain(err) {
  const out = { message: err && err.message ? String(err.message) : String(err) };
  if (err && typeof err === 'object') {
    for (const key of ['name', 'code', 'detail', 'hint', 'severity', 'constraint', 'table', 'column', 'schema', 'position', 'where']) {
      if (err[key] !== undefined && err[key] !== null) {
        out[key] = typeof err[key] === 'object' ? String(err[key]) : err[key];
      }
    }
  }
  return out;
}

/**
 * Sends one protocol message (ending in Sync, or a simple Query) and returns the backend's answer:
 * every message, ending in ReadyForQuery, as one buffer.
 */
function exchange(message) {
  if (!db.ready) {
    throw new Error('the embedded database is closed');
  }
  const chunks = [];
  // execProtocolRawStream is async only for its optional file-system sync (off here): the
  // statement runs, and onRawData is called, before it returns. A failure inside PGlite itself
  // (not a database error, which arrives as a message) rejects the promise instead of throwing.
  // The chunks are views PGlite may reuse: copy them.
  db.execProtocolRawStream(message, { syncToFs: false, onRawData: (bytes) => chunks.push(Buffer.from(bytes)) }).catch((err) => {
    process.stderr.write(`continuum: the embedded database failed: ${err && err.stack ? err.stack : String(err)}\n`);
  });
  const answer = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  // Every complete answer ends in ReadyForQuery: 'Z', length 5, the transaction status.
  const n = answer.length;
  if (n < 6 || answer[n - 6] !== 0x5a || answer.readUInt32BE(n - 5) !== 5) {
    throw new Error('the embedded database failed while running the statement (see the log)');
  }
  return answer;
}

/** An answer as PGlite's protocol parser reads it: its messages and the first error among them. */
function messagesOf(answer) {
  const messages = [];
  let error;
  new protocol.Parser().parse(answer, (m) => {
    if (m.name === 'error') {
      error ??= m;
    } else {
      messages.push(m);
    }
  });
  return { messages, error };
}

/**
 * The rows of an answer to one extended-protocol statement, read straight from its bytes, and
 * whether a Parse succeeded; undefined when the answer holds anything but the usual messages (an
 * error, a notice), which messagesOf then reads. The values are converted as PGlite's
 * parseResults converts them (its parseType, with this database's parsers); only the message
 * decoding is done here: PGlite's parser copies every field into an ArrayBuffer of its own first,
 * which took ~0.5 ms of this thread per 20-row page.
 */
function fastRows(answer, wrapped) {
  const rows = [];
  let names;
  let oids;
  let parsed = false;
  let complete = false;
  // A wrapped statement's answer starts with the SET's CommandComplete.
  const before = wrapped ? 1 : 0;
  let commands = 0;
  let at = 0;
  while (at < answer.length) {
    const type = answer[at];
    const body = at + 5;
    const next = at + 1 + answer.readUInt32BE(at + 1);
    switch (type) {
      case 0x31: // ParseComplete
        parsed = true;
        break;
      case 0x32: // BindComplete
      case 0x6e: // NoData
      case 0x5a: // ReadyForQuery
        break;
      case 0x43: // CommandComplete: the statement's rows are all in
        commands++;
        if (commands === before + 1) {
          complete = true;
        }
        break;
      case 0x54: {
        // RowDescription: per field its name, then table oid, column, type oid, size, modifier, format.
        const count = answer.readInt16BE(body);
        names = new Array(count);
        oids = new Array(count);
        let p = body + 2;
        for (let i = 0; i < count; i++) {
          const end = answer.indexOf(0, p);
          names[i] = answer.toString('utf8', p, end);
          if (names[i] === '__proto__') {
            return undefined;
          }
          oids[i] = answer.readUInt32BE(end + 7);
          p = end + 19;
        }
        break;
      }
      case 0x44: {
        // DataRow: per field its length (-1: null) and text.
        if (!names || commands !== before) {
          return undefined;
        }
        const count = answer.readInt16BE(body);
        const row = {};
        let p = body + 2;
        for (let i = 0; i < count; i++) {
          const length = answer.readInt32BE(p);
          p += 4;
          if (length < 0) {
            row[names[i]] = null;
          } else {
            row[names[i]] = types.parseType(answer.toString('utf8', p, p + length), oids[i], db.parsers);
            p += length;
          }
        }
        rows.push(row);
        break;
      }
      default:
        return undefined;
    }
    at = next;
  }
  // Without CommandComplete there is no result (parseResults answers no rows).
  return { rows: complete ? rows : [], parsed };
}

/** (Re)creates the PLAN_SWITCH statements (at start, and after DEALLOCATE ALL). */
function prepareSwitches() {
  const { error } = messagesOf(
    exchange(
      Buffer.concat([
        ser.parse({ name: PLAN_SWITCH.generic, text: 'SET plan_cache_mode = force_generic_plan', types: [] }),
        ser.parse({ name: PLAN_SWITCH.custom, text: 'SET plan_cache_mode = force_custom_plan', types: [] }),
        ser.parse({ name: PLAN_SWITCH.auto, text: 'RESET plan_cache_mode', types: [] }),
        ser.sync(),
      ]),
    ),
  );
  if (error) {
    throw error;
  }
}

/**
 * A Bind message to the unnamed portal from statement `name`, as parts: its header and `section`,
 * the parameters encoded by the calling thread (bind-params.ts encodeBindParams).
 */
function bindMessage(name, section) {
  const nameBytes = Buffer.byteLength(name, 'utf8');
  const head = Buffer.allocUnsafe(7 + nameBytes);
  head[0] = 0x42; // 'B'
  head.writeInt32BE(4 + 1 + nameBytes + 1 + section.byteLength, 1);
  head[5] = 0; // portal ''
  head.write(name, 6, 'utf8');
  head[6 + nameBytes] = 0;
  return [head, Buffer.from(section.buffer, section.byteOffset, section.byteLength)];
}

/**
 * One parameterised statement: its rows, as PGlite's query() would return them. `plan`
 * ('generic' or 'custom', with `prepare`): how PostgreSQL plans it (see the header).
 */
function query(sql, bind, prepare, plan) {
  let name = prepare ? prepared.get(sql) : undefined;
  const parts = [];
  const mode = prepare && (plan === 'generic' || plan === 'custom') ? plan : 'auto';
  // The mode stays set after the statement: a run of statements that ask for the same one (a
  // search load) sets it once. Setting it took 30-50 us per statement in WebAssembly.
  const wrapped = mode !== planMode;
  if (wrapped) {
    parts.push(ser.bind({ statement: PLAN_SWITCH[mode], values: [] }), ser.execute({}));
    planSwitches++;
  }
  let naming;
  if (name === undefined) {
    naming = prepare && prepared.size < MAX_PREPARED ? `s${nextStatement++}` : undefined;
    parts.push(ser.parse({ name: naming, text: sql, types: [] }));
    name = naming ?? '';
  }
  parts.push(...bindMessage(name, bind), ser.describe({ type: 'P' }), ser.execute({}));
  parts.push(ser.sync());
  // Unknown until the answer says the statement succeeded (a failure undoes the SET with its
  // transaction).
  planMode = undefined;
  const answer = exchange(Buffer.concat(parts));
  const fast = fastRows(answer, wrapped);
  if (fast) {
    if (naming !== undefined && fast.parsed) {
      prepared.set(sql, naming);
    }
    planMode = mode;
    return fast.rows;
  }
  const { messages, error } = messagesOf(answer);
  // A Parse that succeeded created the statement even when Bind or Execute then failed.
  if (naming !== undefined && messages.some((m) => m.name === 'parseComplete')) {
    prepared.set(sql, naming);
  }
  if (error) {
    throw error;
  }
  planMode = mode;
  // One result per CommandComplete: a wrapped statement's is the second (after the SET's).
  return parse.parseResults(messages, db.parsers)[wrapped ? 1 : 0].rows;
}

/** A script of statements without parameters (simple query protocol). */
function simple(sql) {
  const { messages, error } = messagesOf(exchange(ser.query(sql)));
  if (error) {
    throw error;
  }
  return messages;
}

function run(msg) {
  switch (msg.op) {
    case 'query':
      try {
        return query(msg.sql, msg.bind, msg.prepare === true, msg.plan);
      } catch (err) {
        if (msg.tx) {
          holderFailed = true;
        }
        throw err;
      }
    case 'exec':
      // A script may change any setting.
      planMode = undefined;
      try {
        simple(msg.sql);
      } catch (err) {
        if (msg.tx) {
          holderFailed = true;
        }
        throw err;
      }
      // A script may change tables that prepared statements read (migrations): prepare them again.
      if (prepared.size > 0) {
        simple('DEALLOCATE ALL');
        prepared.clear();
        prepareSwitches();
      }
      return undefined;
    case 'begin':
      try {
        simple('BEGIN');
      } catch (err) {
        known.delete(msg.tx);
        throw err;
      }
      holder = msg.tx;
      holderFailed = false;
      return undefined;
    case 'end': {
      const failed = holderFailed;
      holder = 0;
      holderFailed = false;
      known.delete(msg.tx);
      // A SET inside the transaction is undone when it rolls back.
      if (!msg.commit || failed) {
        planMode = undefined;
      }
      let done;
      try {
        done = simple(msg.commit ? 'COMMIT' : 'ROLLBACK');
      } catch (err) {
        planMode = undefined;
        throw err;
      }
      const tag = done.find((m) => m.name === 'commandComplete');
      if (tag && tag.text === 'ROLLBACK') {
        planMode = undefined;
      }
      if (msg.commit && (failed || (tag && tag.text === 'ROLLBACK'))) {
        throw new Error('the transaction was rolled back: a statement in it failed');
      }
      return undefined;
    }
    case 'stats': {
      const { heapUsed, external, arrayBuffers } = process.memoryUsage();
      return { planSwitches, memory: { heapUsed, external, arrayBuffers } };
    }
    default:
      throw new Error(`unknown operation ${msg.op}`);
  }
}

/** Whether `msg` may use the connection now. */
function runnable(msg) {
  if (msg.op === 'begin' || !msg.tx) {
    return holder === 0;
  }
  return holder === msg.tx;
}

function settle(msg) {
  let rows;
  try {
    rows = run(msg);
  } catch (err) {
    reply(msg.id, false, plain(err));
    return;
  }
  reply(msg.id, true, rows);
}

/** Runs every waiting operation that may run now, oldest first. */
function drain() {
  for (let i = 0; i < waiting.length; ) {
    if (runnable(waiting[i])) {
      const [msg] = waiting.splice(i, 1);
      settle(msg);
      i = 0; // the connection may have changed hands: look again from the oldest
    } else {
      i++;
    }
  }
  if (closing && holder === 0 && waiting.length === 0) {
    closing();
  }
}

function receive(msg) {
  if (msg.op === 'close') {
    // Statements already sent finish first (a bounded wait: one stuck behind a transaction that
    // is never ended must not keep the process from stopping).
    let stopped = false;
    const stop = () => {
      if (stopped) {
        return;
      }
      stopped = true;
      closing = undefined;
      // Whatever still waits (behind a transaction never ended) is refused, not left unanswered.
      for (const w of waiting.splice(0)) {
        reply(w.id, false, { message: 'the embedded database is closed' });
      }
      db.close().then(
        () => reply(msg.id, true, undefined),
        (err) => reply(msg.id, false, plain(err)),
      );
    };
    closeRequested = true;
    closing = stop;
    setTimeout(stop, 5000).unref();
    drain();
    return;
  }
  // After close, only what was sent before it runs (the open transaction, the operations waiting).
  if (closeRequested && !(msg.tx && known.has(msg.tx) && msg.op !== 'begin')) {
    reply(msg.id, false, { message: 'the embedded database is closed' });
    return;
  }
  if (msg.tx && msg.op !== 'begin' && !known.has(msg.tx)) {
    reply(msg.id, false, { message: `transaction ${msg.tx} is not open` });
    return;
  }
  if (msg.op === 'begin') {
    known.add(msg.tx);
  }
  // Operations of the transaction holding the connection run at once; others keep arrival order.
  if (runnable(msg) && (holder !== 0 || waiting.length === 0)) {
    settle(msg);
    if (msg.op === 'end') {
      drain();
    }
  } else {
    waiting.push(msg);
  }
}

/**
 * PGlite's WebAssembly module (pglite.wasm, 9 MB), compiled from bytes read into memory that
 * glibc's malloc never hands out. PGlite reads the file into a Buffer, and when that Buffer is
 * freed glibc raises its mmap threshold to the block's size, and the threshold for giving the
 * top of an arena back to the system to twice that (18 MB): every thread's arena (V8's compiler
 * threads tier PGlite's code up) then keeps that much freed memory resident. A WebAssembly.Memory
 * is mapped by V8 itself; V8 copies the bytes it compiles into memory of its own for the
 * module's lifetime.
 */
async function compilePglite() {
  const file = join(dirname(require.resolve('@electric-sql/pglite')), 'pglite.wasm');
  const size = statSync(file).size;
  const pages = Math.max(1, Math.ceil(size / 65536));
  const bytes = new Uint8Array(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer, 0, size);
  const fd = openSync(file, 'r');
  try {
    for (let at = 0; at < size; ) {
      const n = readSync(fd, bytes, at, size - at, at);
      if (n === 0) {
        throw new Error(`${file} ended after ${at} of ${size} bytes`);
      }
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  return WebAssembly.compile(bytes);
}

async function main() {
  try {
    db = await PGlite.create({ pgliteWasmModule: await compilePglite(), dataDir: workerData.dataDir, relaxedDurability: false, startParams: [...PGlite.defaultStartParams, ...workerData.startParams] });
    prepareSwitches();
  } catch (err) {
    parentPort.postMessage({ ready: false, error: plain(err) });
    return;
  }
  parentPort.on('message', receive);
  parentPort.postMessage({ ready: true });
}

void main();
