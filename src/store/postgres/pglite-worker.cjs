'use strict';
/*
 * The embedded store's PostgreSQL (PGlite) on its own thread (src/store/postgres/pglite-thread.ts
 * starts it). PGlite runs each statement synchronously in WebAssembly; here that work runs while
 * the main thread parses, validates and indexes the next request, on the machine's other core.
 *
 * Messages in:  { id, op: 'query', sql, params, tx } | { id, op: 'exec', sql, tx }
 *               { id, op: 'begin', tx } | { id, op: 'end', tx, commit } | { id, op: 'close' }
 * Messages out: { id, ok: true, rows? } | { id, ok: false, error: { message, ...fields } }
 *               { ready: true } | { ready: false, error }
 * `tx` names an open transaction (0: none). PGlite serialises transactions and queries itself,
 * exactly as it does on the main thread.
 */
const { parentPort, workerData } = require('node:worker_threads');
const { PGlite } = require('@electric-sql/pglite');

/** tx number -> { q: the transaction's queryable, finish(commit) , done: Promise } */
const open = new Map();
let db;
/** Operations being handled, so that close waits for them. */
const inflight = new Set();

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

function target(tx) {
  if (!tx) {
    return db;
  }
  const t = open.get(tx);
  if (!t) {
    throw new Error(`transaction ${tx} is not open`);
  }
  return t.q;
}

async function handle(msg) {
  switch (msg.op) {
    case 'query': {
      const res = await target(msg.tx).query(msg.sql, msg.params);
      return res.rows;
    }
    case 'exec':
      await target(msg.tx).exec(msg.sql);
      return undefined;
    case 'begin': {
      let finish;
      const outcome = new Promise((resolve, reject) => {
        finish = (commit) => (commit ? resolve() : reject(new Error('rolled back')));
      });
      outcome.catch(() => undefined);
      let began;
      const begun = new Promise((resolve) => (began = resolve));
      const done = db.transaction(async (q) => {
        open.set(msg.tx, { q, finish, done: undefined });
        began();
        await outcome;
      });
      // BEGIN itself failed: the callback never ran.
      await Promise.race([begun, done]);
      open.get(msg.tx).done = done;
      return undefined;
    }
    case 'end': {
      const t = open.get(msg.tx);
      if (!t) {
        throw new Error(`transaction ${msg.tx} is not open`);
      }
      open.delete(msg.tx);
      t.finish(Boolean(msg.commit));
      try {
        await t.done;
      } catch (err) {
        if (msg.commit) {
          throw err;
        }
      }
      return undefined;
    }
    case 'close': {
      // Statements already sent finish first (a bounded wait: one stuck behind a transaction that
      // is never ended must not keep the process from stopping).
      const others = [...inflight]; // this close is not in the set yet: handle() got here synchronously
      await Promise.race([Promise.allSettled(others), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
      await db.close();
      return undefined;
    }
    default:
      throw new Error(`unknown operation ${msg.op}`);
  }
}

async function main() {
  try {
    db = await PGlite.create({ dataDir: workerData.dataDir, relaxedDurability: false, startParams: [...PGlite.defaultStartParams, ...workerData.startParams] });
  } catch (err) {
    parentPort.postMessage({ ready: false, error: plain(err) });
    return;
  }
  parentPort.on('message', (msg) => {
    const running = handle(msg);
    inflight.add(running);
    running.then(
      (rows) => {
        inflight.delete(running);
        reply(msg.id, true, rows);
      },
      (err) => {
        inflight.delete(running);
        reply(msg.id, false, plain(err));
      },
    );
  });
  parentPort.postMessage({ ready: true });
}

void main();
