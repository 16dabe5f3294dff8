'use strict';
/*
 * The bot sandbox: runs inside a worker thread started by src/bots/sandbox.ts (with an empty
 * process.env and a heap limit). Each bot version gets its own vm context whose globals are only
 * the ECMAScript built-ins plus what is made here, inside the context. No object of this realm
 * (functions, promises, errors, Node APIs) is ever handed to bot code: bot code talks to this file
 * only through strings, via a host function kept in a closure of the in-context prelude. Code
 * generation from strings (eval, new Function) is switched off in the context.
 *
 * This file is plain JavaScript so that it runs the same from src/ (tests) and from a build.
 *
 * Protocol (messages with the main thread):
 *   in:  { type: 'run', runId, bot: { key, code?, network }, event, config, env, now }
 *        (code is left out when the worker loaded that key before; it answers need-code if not)
 *        { type: 'reply', callId, ok, value }          (value: a string; JSON or an error message)
 *   out: { type: 'need-code', runId }
 *        { type: 'call', runId, callId, op, arg }      (op: fhir | fetch | fs; arg: a JSON string)
 *        { type: 'log', runId, level, text }
 *        { type: 'done', runId, ok, result?, error? }  (result: JSON string; error: { message, outcome? })
 */
const { parentPort } = require('node:worker_threads');
const vm = require('node:vm');
const { randomUUID } = require('node:crypto');

/** The in-context half: evaluated once per context, returns functions the host calls with strings. */
const PRELUDE = `'use strict';
(function (host) {
  const pending = new Map();
  const timers = new Map();
  let nextTimer = 1;
  const text = (v) => {
    if (typeof v === 'string') return v;
    if (v instanceof Error) return v.stack || String(v);
    try { return JSON.stringify(v); } catch (e) { return String(v); }
  };
  const log = (level) => (...args) => { host('log', level + ' ' + args.map(text).join(' ')); };
  const logger = { debug: log('debug'), info: log('info'), log: log('info'), warn: log('warn'), error: log('error') };
  globalThis.console = logger;
  const call = (op, arg) => new Promise((resolve, reject) => {
    const id = host('call', op + ' ' + arg);
    if (!id) {
      reject(new Error(op + ' is not allowed now (no grant, or the run has finished)'));
      return;
    }
    pending.set(id, { resolve, reject });
  });
  globalThis.setTimeout = (fn, ms, ...args) => {
    const id = nextTimer++;
    timers.set(id, () => fn(...args));
    host('timer', id + ' ' + (Number(ms) || 0));
    return id;
  };
  globalThis.clearTimeout = (id) => { timers.delete(id); };
  globalThis.queueMicrotask = (fn) => { Promise.resolve().then(fn); };
  globalThis.crypto = { randomUUID: () => host('uuid', '') };

  class FhirClientError extends Error {
    constructor(status, outcome) {
      const issue = outcome && outcome.issue && outcome.issue[0];
      super((issue && (issue.diagnostics || (issue.details && issue.details.text))) || ('HTTP ' + status));
      this.name = 'FhirClientError';
      this.status = status;
      this.outcome = outcome;
    }
  }
  const queryString = (q) => {
    if (q === undefined || q === null) return {};
    const out = {};
    if (typeof q === 'string') {
      for (const part of q.replace(/^\\?/, '').split('&')) {
        if (!part) continue;
        const eq = part.indexOf('=');
        const k = decodeURIComponent((eq < 0 ? part : part.slice(0, eq)).replace(/\\+/g, ' '));
        const v = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1).replace(/\\+/g, ' '));
        (out[k] = out[k] || []).push(v);
      }
      return out;
    }
    for (const k of Object.keys(q)) {
      const v = q[k];
      if (v === undefined) continue;
      out[k] = Array.isArray(v) ? v.map(String) : [String(v)];
    }
    return out;
  };
  const fhir = async (method, path, options) => {
    const o = options || {};
    const raw = await call('fhir', JSON.stringify({ method, path, query: queryString(o.query), body: o.body, ifMatch: o.ifMatch, ifNoneExist: o.ifNoneExist, contentType: o.contentType }));
    const res = JSON.parse(raw);
    if (res.status >= 400) throw new FhirClientError(res.status, res.body);
    return res.body;
  };
  const client = {
    readResource: (type, id) => fhir('GET', type + '/' + id),
    vreadResource: (type, id, vid) => fhir('GET', type + '/' + id + '/_history/' + vid),
    readHistory: (type, id) => fhir('GET', type + '/' + id + '/_history'),
    search: (type, query) => fhir('GET', type, { query }),
    searchResources: async (type, query) => {
      const bundle = await fhir('GET', type, { query });
      return (bundle.entry || []).filter((e) => !e.search || e.search.mode !== 'include').map((e) => e.resource);
    },
    searchOne: async (type, query) => {
      const q = queryString(query);
      q._count = ['1'];
      const bundle = await fhir('GET', type, { query: q });
      return bundle.entry && bundle.entry[0] ? bundle.entry[0].resource : undefined;
    },
    createResource: (resource) => fhir('POST', resource.resourceType, { body: resource }),
    createResourceIfNoneExist: (resource, query) => {
      const q = typeof query === 'string' ? query.replace(/^\\?/, '') : Object.keys(queryString(query)).map((k) => queryString(query)[k].map((v) => encodeURIComponent(k) + '=' + encodeURIComponent(v)).join('&')).join('&');
      return fhir('POST', resource.resourceType, { body: resource, ifNoneExist: q });
    },
    updateResource: (resource, options) => fhir('PUT', resource.resourceType + '/' + resource.id, { body: resource, ifMatch: options && options.ifMatch }),
    patchResource: (type, id, operations) => fhir('PATCH', type + '/' + id, { body: operations, contentType: 'application/json-patch+json' }),
    deleteResource: (type, id) => fhir('DELETE', type + '/' + id),
    executeBatch: (bundle) => fhir('POST', '', { body: bundle }),
    get: (path, query) => fhir('GET', String(path).replace(/^\\/+/, ''), { query }),
    post: (path, body, query) => fhir('POST', String(path).replace(/^\\/+/, ''), { body, query }),
  };
  Object.freeze(client);

  const makeFetch = () => async (url, init) => {
    const i = init || {};
    const raw = await call('fetch', JSON.stringify({ url: String(url), method: i.method || 'GET', headers: i.headers || {}, body: i.body === undefined ? undefined : String(i.body) }));
    const r = JSON.parse(raw);
    const headers = r.headers;
    return {
      ok: r.status >= 200 && r.status < 300,
      status: r.status,
      statusText: r.statusText,
      headers: { get: (name) => headers[String(name).toLowerCase()] ?? null },
      text: async () => r.body,
      json: async () => JSON.parse(r.body),
    };
  };

  return {
    /** Settles a pending host call. */
    settle(id, ok, value) {
      const p = pending.get(id);
      if (!p) return;
      pending.delete(id);
      if (ok) p.resolve(value); else p.reject(new Error(value));
    },
    /** Fires a timer. */
    fire(id) {
      const fn = timers.get(id);
      if (fn) { timers.delete(id); fn(); }
    },
    /** Grants the network (a fetch that goes through the host). */
    allowNetwork() { globalThis.fetch = makeFetch(); },
    /** Runs the bot's handler; reports the outcome through host('done', ...). */
    run(exportsObject, eventJson, configJson, envJson, nowIso, botJson) {
      const handler = exportsObject && (exportsObject.handler || (exportsObject.default && exportsObject.default.handler) || exportsObject.default);
      const finish = (ok, value) => host('done', (ok ? '1' : '0') + value);
      if (typeof handler !== 'function') {
        finish(false, JSON.stringify({ message: 'the bot does not export a handler function (export async function handler(event, ctx))' }));
        return;
      }
      const event = JSON.parse(eventJson);
      const info = JSON.parse(botJson);
      const files = info.files
        ? Object.freeze({
            read: async (path) => JSON.parse(await call('fs', JSON.stringify({ op: 'read', path: String(path) }))),
            write: async (path, text) => { await call('fs', JSON.stringify({ op: 'write', path: String(path), text: String(text) })); },
            list: async (path) => JSON.parse(await call('fs', JSON.stringify({ op: 'list', path: String(path === undefined ? '.' : path) }))),
          })
        : undefined;
      const ctx = Object.freeze({
        files,
        bot: Object.freeze({ id: info.id, name: info.name }),
        config: JSON.parse(configJson),
        env: Object.freeze(JSON.parse(envJson)),
        now: () => new Date(nowIso),
        log: logger,
        fhir: client,
      });
      let result;
      try {
        result = Promise.resolve(handler(event, ctx));
      } catch (err) {
        result = Promise.reject(err);
      }
      result.then(
        (value) => finish(true, value === undefined ? '' : JSON.stringify(value)),
        (err) => finish(false, JSON.stringify({
          message: err instanceof Error ? err.message : text(err),
          stack: err instanceof Error ? err.stack : undefined,
          status: err && typeof err.status === 'number' ? err.status : undefined,
          outcome: err && err.outcome && err.outcome.resourceType === 'OperationOutcome' ? err.outcome : undefined,
        })),
      );
    },
  };
})`;

/** Per bot version: its context, the in-context runtime and the module's exports. */
const loaded = new Map();
const MAX_LOADED = 50;
/** The run in progress (one at a time per worker). */
let current;
let nextCall = 1;

/**
 * The one host function a context's code can reach (through the prelude's closure): strings in,
 * strings or numbers out, never an object of this realm. It only acts for the run in progress of
 * its own context, so code a finished run left behind (a timer, a promise chain) cannot act in
 * another bot's run.
 */
const makeHost = (entry) => function host(op, arg) {
  const run = current;
  if (!run || run.entry !== entry) {
    return op === 'call' ? 0 : '';
  }
  switch (op) {
    case 'log':
      parentPort.postMessage({ type: 'log', runId: run.runId, level: arg.slice(0, arg.indexOf(' ')), text: arg.slice(arg.indexOf(' ') + 1) });
      return '';
    case 'call': {
      const space = arg.indexOf(' ');
      const callOp = arg.slice(0, space);
      if (callOp === 'fetch' && !run.network) {
        return 0;
      }
      const callId = nextCall++;
      run.calls.add(callId);
      parentPort.postMessage({ type: 'call', runId: run.runId, callId, op: callOp, arg: arg.slice(space + 1) });
      return callId;
    }
    case 'timer': {
      const [id, ms] = arg.split(' ').map(Number);
      const runtime = run.runtime;
      setTimeout(() => {
        if (current === run) {
          runtime.fire(id);
        }
      }, Math.min(ms, 2 ** 31 - 1)).unref();
      return '';
    }
    case 'uuid':
      return randomUUID();
    case 'done': {
      if (current !== run) {
        return '';
      }
      current = undefined;
      const ok = arg[0] === '1';
      const value = arg.slice(1);
      parentPort.postMessage(ok ? { type: 'done', runId: run.runId, ok, result: value } : { type: 'done', runId: run.runId, ok, error: JSON.parse(value) });
      return '';
    }
    default:
      return '';
  }
};

function load(bot) {
  let entry = loaded.get(bot.key);
  if (entry) {
    loaded.delete(bot.key);
    loaded.set(bot.key, entry); // most recently used last
    return entry;
  }
  const context = vm.createContext(Object.create(null), { codeGeneration: { strings: false, wasm: false }, name: `bot ${bot.key}` });
  entry = { runtime: undefined, exportsObject: undefined };
  entry.runtime = new vm.Script(PRELUDE, { filename: 'continuum-bot-prelude.js' }).runInContext(context)(makeHost(entry));
  if (bot.network) {
    entry.runtime.allowNetwork();
  }
  entry.exportsObject = new vm.Script(bot.code, { filename: `bot-${bot.name}.js` }).runInContext(context, { timeout: 5000 });
  loaded.set(bot.key, entry);
  if (loaded.size > MAX_LOADED) {
    loaded.delete(loaded.keys().next().value);
  }
  return entry;
}

parentPort.on('message', (msg) => {
  if (msg.type === 'reply') {
    const run = current;
    if (run && run.calls.delete(msg.callId)) {
      run.runtime.settle(msg.callId, msg.ok, msg.value);
    }
    return;
  }
  if (msg.type !== 'run') {
    return;
  }
  if (msg.bot.code === undefined && !loaded.has(msg.bot.key)) {
    parentPort.postMessage({ type: 'need-code', runId: msg.runId });
    return;
  }
  let entry;
  try {
    entry = load(msg.bot);
  } catch (err) {
    parentPort.postMessage({ type: 'done', runId: msg.runId, ok: false, error: { message: `the bot's code failed to load: ${err && err.message ? err.message : String(err)}` } });
    return;
  }
  current = { runId: msg.runId, entry, runtime: entry.runtime, network: msg.bot.network, calls: new Set() };
  try {
    entry.runtime.run(entry.exportsObject, msg.event, msg.config, msg.env, msg.now, JSON.stringify({ id: msg.bot.id, name: msg.bot.name, files: Boolean(msg.bot.files) }));
  } catch (err) {
    if (current && current.runId === msg.runId) {
      current = undefined;
      parentPort.postMessage({ type: 'done', runId: msg.runId, ok: false, error: { message: err && err.message ? err.message : String(err) } });
    }
  }
});
