/**
 * Differential search test over the official R4 examples (npm `hl7.fhir.r4.examples`, CC0).
 *
 * Every example is PUT under its own id into a fresh server (examples the server refuses are counted
 * and their reasons summarised). Then, for each stored resource type and each of its token, string,
 * reference, date, uri, number and quantity parameters, search values are drawn from the values the
 * parameter's FHIRPath yields on the examples (seeded, so the sample is the same on every run). Each
 * (type, parameter, value) is searched through the server in process and the ids returned are
 * compared with the ids an independent evaluation expects: the same FHIRPath evaluated with
 * fhirpath.js over every stored resource of the type, matched with the R4 rules of search.html as
 * written in differential-support.ts (none of src/search is used on that side; the registry only
 * lists the parameters and their expressions).
 *
 * The first test runs without the SearchParameter examples that carry a base R4 parameter's url
 * (the R4 set itself, status draft): storing a draft SearchParameter makes the server drop the base
 * parameter of that url from its registry. The second test stores them too and runs the whole
 * differential again, so it fails for as long as that bug is there.
 *
 * Left out: composite and special parameters (their matching is not a single value rule), search
 * values the spec leaves open (`system|code` on plain `code` elements, whose system is implicit) and
 * SampledData quantities.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { FhirError } from '../../../src/errors';
import { handle } from '../../../src/fhir/router';
import type { RequestContext } from '../../../src/fhir/types';
import { createRegistry } from '../../../src/search/definitions';
import { BASE_URL, startTestServer, type TestServer } from '../../support/server';
import {
  dateProbe,
  evaluator,
  fold,
  type Item,
  numberProbe,
  numbers,
  PARAM_KINDS,
  type ParamKind,
  pick,
  type Probe,
  quantities,
  quantityProbe,
  referenceProbe,
  references,
  seededRandom,
  stringProbe,
  strings,
  tokenProbe,
  tokens,
  uriProbe,
  uris,
  writtenDates,
} from './differential-support';

const SEED = 20240501;
/** Search values tried per parameter and form (e.g. token `system|code`), at most. */
const PER_FORM = 4;

interface Pair {
  type: string;
  code: string;
  kind: ParamKind;
  probe: Probe;
  expected: Set<string>;
}

interface Disagreement {
  query: string;
  expectedOnly: string[];
  serverOnly: string[];
  error?: string;
}

let server: TestServer;
let ctx: RequestContext;
const registry = createRegistry();
/** Stored resources by type, as the server stored them (meta.lastUpdated etc. included). */
const stored = new Map<string, Resource[]>();
const refusals = new Map<string, number>();
let examples = 0;
/**
 * SearchParameter examples whose url is that of a base R4 parameter (the examples are the R4 set
 * itself, status draft). Storing one makes the server drop the base parameter of that url (see the
 * second test), so the first test runs without them.
 */
const heldBack: Resource[] = [];

function exampleFiles(): { dir: string; files: string[] } {
  const dir = dirname(require.resolve('hl7.fhir.r4.examples/package.json'));
  const files = readdirSync(dir)
    .filter((f) => /^[A-Z][A-Za-z]+-.+\.json$/.test(f))
    .sort();
  return { dir, files };
}

/** A refusal reason with positions and values blurred, so that like reasons count together. */
function reasonOf(type: string, err: unknown): string {
  const msg = err instanceof FhirError ? `${err.category}: ${err.message}` : String(err);
  return `${type}: ${msg.replace(/\[\d+\]/g, '[n]').replace(/'[^']{40,}'/g, "'…'").slice(0, 160)}`;
}

async function put(resource: Resource): Promise<void> {
  try {
    const res = await handle({ method: 'PUT', path: `${resource.resourceType}/${resource.id}`, query: {}, body: resource, contentType: 'application/fhir+json' }, ctx);
    const saved = (res.resource ?? JSON.parse(res.json as string)) as Resource;
    const list = stored.get(saved.resourceType) ?? [];
    list.push(saved);
    stored.set(saved.resourceType, list);
  } catch (err) {
    const reason = reasonOf(resource.resourceType, err);
    refusals.set(reason, (refusals.get(reason) ?? 0) + 1);
  }
}

function loadReport(): { loaded: number; text: string } {
  const loaded = [...stored.values()].reduce((n, l) => n + l.length, 0);
  const refused = [...refusals.values()].reduce((n, c) => n + c, 0);
  const text =
    `R4 examples: ${examples} read, ${loaded} stored (${stored.size} types), ${refused} refused:\n` +
    [...refusals]
      .sort((a, b) => b[1] - a[1])
      .map(([r, n]) => `  ${n} x ${r}`)
      .join('\n');
  return { loaded, text };
}

beforeAll(async () => {
  server = await startTestServer();
  ctx = server.continuum.context(BASE_URL);
  const { dir, files } = exampleFiles();
  for (const f of files) {
    const resource = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Resource;
    examples++;
    const url = (resource as { url?: unknown }).url;
    if (resource.resourceType === 'SearchParameter' && typeof url === 'string' && registry.byUrl(url)) {
      heldBack.push(resource);
    } else {
      await put(resource);
    }
  }
}, 600_000);

afterAll(async () => {
  await server?.close();
});

/** Search values of one kind drawn from a parameter's values on the examples, grouped by form. */
function candidates(kind: ParamKind, items: Item[], rnd: () => number): Probe[] {
  const out: Probe[] = [];
  switch (kind) {
    case 'token':
      for (const t of tokens(items)) {
        out.push(tokenProbe('code', t));
        if (t.coded && t.system !== undefined) {
          out.push(tokenProbe('system|code', t), tokenProbe('system|', t));
        } else if (t.coded) {
          out.push(tokenProbe('|code', t));
        }
      }
      break;
    case 'string':
      for (const s of strings(items)) {
        const chars = Array.from(s.trimStart());
        const prefix = chars.slice(0, 1 + Math.floor(rnd() * 8)).join('');
        if (fold(prefix) !== '' && !/\s$/.test(prefix)) {
          out.push(stringProbe('prefix', prefix), stringProbe('prefix, upper case', prefix.toUpperCase()));
        }
        if (fold(s) !== '' && chars.length <= 400) {
          out.push(stringProbe('whole value', s.trim()));
        }
      }
      break;
    case 'reference':
      for (const r of references(items, BASE_URL)) {
        out.push(referenceProbe(r, BASE_URL));
      }
      break;
    case 'date':
      for (const d of writtenDates(items)) {
        out.push(dateProbe('eq', d), dateProbe('ge', d), dateProbe('le', d));
      }
      break;
    case 'uri':
      for (const u of uris(items)) {
        out.push(uriProbe(u));
      }
      break;
    case 'number':
      for (const n of numbers(items)) {
        const v = Number.isFinite(n.low) ? n.low : n.high;
        out.push(numberProbe('eq', String(v)), numberProbe('ge', String(v)), numberProbe('le', String(v)));
      }
      break;
    case 'quantity':
      for (const q of quantities(items)) {
        const v = String(Number.isFinite(q.low) ? q.low : q.high);
        out.push(quantityProbe('value', v, q));
        if (q.system !== undefined && q.code !== undefined) {
          out.push(quantityProbe('value|system|code', v, q));
        }
        if (q.code !== undefined || q.unit !== undefined) {
          out.push(quantityProbe('value||unit', v, q));
        }
      }
      break;
  }
  return out;
}

/** Builds the sample: pairs with their expected id sets; also what could not be evaluated. */
function samplePairs(): { pairs: Pair[]; unevaluable: string[] } {
  const rnd = seededRandom(SEED);
  const pairs: Pair[] = [];
  const unevaluable: string[] = [];
  for (const type of [...stored.keys()].sort()) {
    const resources = stored.get(type)!;
    const defs = registry
      .forType(type)
      .filter((d) => d.indexed && d.expression !== undefined && (PARAM_KINDS as readonly string[]).includes(d.type))
      .sort((a, b) => a.code.localeCompare(b.code));
    for (const def of defs) {
      const kind = def.type as ParamKind;
      let values: Item[][];
      try {
        const evaluate = evaluator(def.expression!);
        values = resources.map((r) => evaluate(r));
      } catch (err) {
        unevaluable.push(`${type}.${def.code} (${def.expression}): ${(err as Error).message.slice(0, 120)}`);
        continue;
      }
      // Candidate search values from every resource, deduplicated, grouped by form.
      const byForm = new Map<string, Map<string, Probe>>();
      values.forEach((items) => {
        for (const p of candidates(kind, items, rnd)) {
          const forms = byForm.get(p.form) ?? new Map<string, Probe>();
          forms.set(p.value, forms.get(p.value) ?? p);
          byForm.set(p.form, forms);
        }
      });
      for (const form of [...byForm.keys()].sort()) {
        const chosen = pick([...byForm.get(form)!.values()], PER_FORM, rnd);
        for (const probe of chosen) {
          const expected = new Set<string>();
          values.forEach((items, i) => {
            if (probe.matches(items)) {
              expected.add(resources[i].id!);
            }
          });
          pairs.push({ type, code: def.code, kind, probe, expected });
        }
      }
    }
  }
  return { pairs, unevaluable };
}

/** The ids of all matches, following next links. */
async function serverIds(type: string, code: string, value: string): Promise<Set<string>> {
  const ids = new Set<string>();
  let query: Record<string, string[]> = { [code]: [value], _count: ['1000'] };
  for (let page = 0; page < 50; page++) {
    const res = await handle({ method: 'GET', path: type, query }, ctx);
    const bundle = (res.resource ?? JSON.parse(res.json as string)) as Bundle;
    for (const e of bundle.entry ?? []) {
      if (e.search?.mode === 'match' && e.resource?.id) {
        ids.add(e.resource.id);
      }
    }
    const next = bundle.link?.find((l) => l.relation === 'next')?.url;
    if (!next) {
      return ids;
    }
    query = {};
    for (const [k, v] of new URL(next).searchParams) {
      (query[k] ??= []).push(v);
    }
  }
  throw new Error(`more than 50 pages for ${type}?${code}=${value}`);
}

interface Outcome {
  pairs: number;
  disagreements: Disagreement[];
  report: string;
}

/** Draws the sample over what is stored now, runs every search and compares. */
async function differential(): Promise<Outcome> {
  const t0 = Date.now();
  const { pairs, unevaluable } = samplePairs();
  const tSample = Date.now() - t0;
  const perKind = new Map<string, { pairs: number; params: Set<string>; nonEmpty: number }>();
  const perForm = new Map<string, number>();
  const disagreements: Disagreement[] = [];
  for (const pair of pairs) {
    const k = perKind.get(pair.kind) ?? { pairs: 0, params: new Set<string>(), nonEmpty: 0 };
    k.pairs++;
    k.params.add(`${pair.type}.${pair.code}`);
    perKind.set(pair.kind, k);
    const form = `${pair.kind} ${pair.probe.form}`;
    perForm.set(form, (perForm.get(form) ?? 0) + 1);
    const query = `${pair.type}?${pair.code}=${pair.probe.value}`;
    let actual: Set<string>;
    try {
      actual = await serverIds(pair.type, pair.code, pair.probe.value);
    } catch (err) {
      disagreements.push({ query, expectedOnly: [...pair.expected].sort(), serverOnly: [], error: (err as Error).message.slice(0, 200) });
      continue;
    }
    if (actual.size > 0) {
      k.nonEmpty++;
    }
    const expectedOnly = [...pair.expected].filter((id) => !actual.has(id)).sort();
    const serverOnly = [...actual].filter((id) => !pair.expected.has(id)).sort();
    if (expectedOnly.length > 0 || serverOnly.length > 0) {
      disagreements.push({ query, expectedOnly, serverOnly });
    }
  }
  const tSearch = Date.now() - t0 - tSample;
  const report =
    `Differential search: ${pairs.length} (type, parameter, value) pairs, searched in ${tSearch} ms (sample drawn in ${tSample} ms); ` +
    `${pairs.length - disagreements.length} agree, ${disagreements.length} disagree.\n` +
    [...perKind]
      .sort()
      .map(([kind, k]) => `  ${kind}: ${k.pairs} pairs over ${k.params.size} parameters (${k.nonEmpty} with results)`)
      .join('\n') +
    '\n  forms: ' +
    [...perForm]
      .sort()
      .map(([f, n]) => `${f} ${n}`)
      .join(', ') +
    (unevaluable.length ? `\n  not evaluated (${unevaluable.length}):\n    ${unevaluable.join('\n    ')}` : '');
  return { pairs: pairs.length, disagreements, report };
}

function failure(o: Outcome): string {
  const more = (ids: string[]): string => (ids.slice(0, 8).join(', ') || '-') + (ids.length > 8 ? ` (+${ids.length - 8})` : '');
  const shown = o.disagreements
    .slice(0, 40)
    .map((d) => `${d.query}\n    ${d.error ? `error: ${d.error}\n    ` : ''}expected only: ${more(d.expectedOnly)}\n    server only: ${more(d.serverOnly)}`)
    .join('\n');
  return `${o.disagreements.length} of ${o.pairs} searches disagree (first ${Math.min(40, o.disagreements.length)}):\n${shown}`;
}

test('the server agrees with an independent FHIRPath evaluation on a wide sample of searches over the R4 examples', async () => {
  const { loaded, text } = loadReport();
  console.log(`${text}\n  (${heldBack.length} SearchParameter examples with base R4 urls held back for the next test)`);
  expect(loaded).toBeGreaterThan(3600);
  expect(stored.size).toBeGreaterThan(120);
  const outcome = await differential();
  console.log(outcome.report);
  expect(outcome.pairs).toBeGreaterThan(3000);
  if (outcome.disagreements.length > 0) {
    throw new Error(failure(outcome));
  }
}, 600_000);

test('storing the draft SearchParameter examples keeps the base parameters of the same url in force', async () => {
  for (const r of heldBack) {
    await put(r);
  }
  const { loaded, text } = loadReport();
  console.log(text);
  expect(loaded).toBeGreaterThan(4500);
  // The same differential over everything stored, SearchParameters included.
  const outcome = await differential();
  console.log(outcome.report);
  expect(outcome.pairs).toBeGreaterThan(3000);
  if (outcome.disagreements.length > 0) {
    throw new Error(failure(outcome));
  }
}, 600_000);
