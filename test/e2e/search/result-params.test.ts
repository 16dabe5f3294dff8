/**
 * Search result parameters and the other search interactions (FHIR R4 search.html, http.html#search):
 * _id, _count and paging, _sort, _total, _summary, _elements, _include / _revinclude (with :iterate
 * and *), POST _search, system-level and compartment search, chaining, reverse chaining (_has),
 * errors, and conditional update / delete (http.html#cond-update, #cdelete).
 */
import type { Bundle, Observation, OperationOutcome, Organization, Patient, Practitioner, Resource } from '@medplum/fhirtypes';
import type { Response } from 'supertest';
import { BASE_URL, FHIR_JSON, startTestServer, type TestServer } from '../../support/server';
import { entriesByMode, Fixtures, link, matchKeys, pathOf, searchAll, sorted, urn } from './support';

const RP = 'urn:test:search:rp';
const COND = 'urn:test:search:cond';
const PAGING = 'urn:test:search:paging';
const LOINC = 'http://loinc.org';
const WEIGHT = '29463-7';
const HEIGHT = '8302-2';
const SYSTOLIC = '8480-6';

function pat(key: string, family: string, given: string, fields: Partial<Patient> = {}): Patient {
  return { resourceType: 'Patient', identifier: [{ system: RP, value: key }], name: [{ family, given: [given] }], ...fields };
}

function obs(key: string, subject: string, code: string, fields: Partial<Observation> = {}): Observation {
  return {
    resourceType: 'Observation',
    identifier: [{ system: RP, value: key }],
    status: 'final',
    code: { coding: [{ system: LOINC, code }] },
    subject: { reference: urn(subject) },
    valueQuantity: { value: 70, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
    ...fields,
  };
}

const org: Organization = { resourceType: 'Organization', identifier: [{ system: RP, value: 'org-1' }], name: 'Acme Clinic' };
const practitioner: Practitioner = { resourceType: 'Practitioner', identifier: [{ system: RP, value: 'pr-1' }], name: [{ family: 'House', given: ['Gregory'] }] };

const FIXTURES: Record<string, Resource> = {
  'org-1': org,
  'pr-1': practitioner,
  'rp-ann': pat('rp-ann', 'Alpha', 'Ann', { birthDate: '1980-05-01', gender: 'female' }),
  'rp-bob': pat('rp-bob', 'Beta', 'Bob', { birthDate: '1970-01-01', gender: 'male' }),
  'rp-cid': pat('rp-cid', 'Alpha', 'Cid', { birthDate: '1970-01-01', gender: 'male' }),
  'rp-dee': pat('rp-dee', 'Gamma', 'Dee', {
    birthDate: '1990-12-31',
    gender: 'female',
    maritalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M' }] },
    communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'fr' }] } }],
    generalPractitioner: [{ reference: urn('pr-1') }],
    managingOrganization: { reference: urn('org-1') },
  }),
  'rp-eli': pat('rp-eli', 'Delta', 'Eli'),
  'ob-1': obs('ob-1', 'rp-ann', WEIGHT, { performer: [{ reference: urn('pr-1') }] }),
  'ob-2': obs('ob-2', 'rp-ann', HEIGHT),
  'ob-3': obs('ob-3', 'rp-bob', WEIGHT),
  'ob-4': obs('ob-4', 'rp-dee', SYSTOLIC),
};
const RP_PATIENTS = ['rp-ann', 'rp-bob', 'rp-cid', 'rp-dee', 'rp-eli'];

let server: TestServer;
let fx: Fixtures;
beforeAll(async () => {
  server = await startTestServer();
  fx = new Fixtures(server);
  await fx.load(FIXTURES);
});
afterAll(() => server.close());

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function expectMatches(query: string, expected: string[]): Promise<void> {
  expect(await matchKeys(server, fx, query)).toEqual(sorted(expected));
}

/** The matches in the order returned (over all pages). */
async function ordered(query: string): Promise<string[]> {
  return (await searchAll(server, fx, query)).matches;
}

async function get(query: string, headers: Record<string, string> = {}): Promise<Response> {
  const req = server.request().get('/' + fx.expand(query));
  for (const [k, v] of Object.entries(headers)) {
    req.set(k, v);
  }
  return req;
}

/** An OperationOutcome with the status; its text mentions one of `mentions` (if any are given). */
function expectOutcome(res: Response, status: number, ...mentions: string[]): void {
  expect(res.status).toBe(status);
  expect(res.body.resourceType).toBe('OperationOutcome');
  if (mentions.length > 0) {
    const text = ((res.body as OperationOutcome).issue ?? []).map((i) => `${i.diagnostics ?? ''} ${i.details?.text ?? ''} ${(i.expression ?? []).join(' ')}`).join('\n');
    expect(mentions.filter((m) => text.includes(m))).not.toEqual([]);
  }
}

describe('the searchset Bundle', () => {
  test('type searchset, self link with the parameters used, entries with fullUrl and search.mode match', async () => {
    const res = await get('Patient?family=alpha');
    expect(res.status).toBe(200);
    const bundle = res.body as Bundle;
    expect(bundle.type).toBe('searchset');
    const self = link(bundle, 'self');
    expect(self).toBeDefined();
    expect(new URL(self!).searchParams.get('family')).toBe('alpha');
    const { match, include } = entriesByMode(bundle);
    expect(include).toEqual([]);
    expect(sorted(match.map((e) => fx.keyOf(e.resource)))).toEqual(['rp-ann', 'rp-cid']);
    for (const e of match) {
      expect(e.fullUrl).toBe(`${BASE_URL}/Patient/${e.resource!.id}`);
    }
  });

  test('each entry carries the resource exactly as a read serves it; no matches, no entry array', async () => {
    const res = await get('Patient?family=alpha&_include=Patient:general-practitioner');
    expect(res.status).toBe(200);
    const { match } = entriesByMode(res.body as Bundle);
    expect(match).toHaveLength(2);
    for (const e of match) {
      const read = await server.request().get(`/Patient/${e.resource!.id}`);
      expect(read.status).toBe(200);
      expect(res.text).toContain(`"resource":${read.text}`);
    }
    for (const query of ['Patient?family=nobody', 'Patient?family=nobody&_elements=name', 'Patient?family=nobody&_summary=true']) {
      const empty = await get(query);
      expect(empty.status).toBe(200);
      expect((empty.body as Bundle).total).toBe(0);
      expect(empty.text).not.toContain('"entry"');
    }
  });

  test('no criteria returns every resource of the type; an empty result is a 200', async () => {
    await expectMatches('Organization', ['org-1']);
    await expectMatches('Practitioner', ['pr-1']);
    const res = await get('Patient?family=nobody');
    expect(res.status).toBe(200);
    expect(res.body.entry ?? []).toEqual([]);
  });
});

describe('_id', () => {
  test.each<[string, string[]]>([
    ['Patient?_id={rp-ann}', ['rp-ann']],
    ['Patient?_id={rp-ann},{rp-bob}', ['rp-ann', 'rp-bob']],
    ['Patient?_id={ob-1}', []], // an Observation's id, searched on Patient
    ['Patient?_id=does-not-exist', []],
    ['Patient?_id={rp-ann}&family=beta', []],
    ['Patient?_id={rp-ann},{rp-bob}&family=beta', ['rp-bob']],
  ])('%s', expectMatches);

  test('_id is case-sensitive', async () => {
    // R4: "Note that matches on _id are always case sensitive."
    const id = fx.id('rp-ann');
    expect(id).not.toBe(id.toUpperCase());
    await expectMatches(`Patient?_id=${id.toUpperCase()}`, []);
  });
});

describe('_count and paging', () => {
  test('_count=0 and _summary=count give the total and no entries', async () => {
    // R4: "if _count has the value 0, this shall be treated the same as _summary=count: the server
    // returns a bundle that reports the total number of resources that match in Bundle.total, but with
    // no entries, and no prev/next/last links."
    for (const q of [`Patient?identifier=${RP}|&_count=0`, `Patient?identifier=${RP}|&_summary=count`]) {
      const res = await get(q);
      expect(res.status).toBe(200);
      const bundle = res.body as Bundle;
      expect(bundle.type).toBe('searchset');
      expect(bundle.total).toBe(RP_PATIENTS.length);
      expect(bundle.entry ?? []).toEqual([]);
      for (const rel of ['next', 'prev', 'previous', 'last']) {
        expect(link(bundle, rel)).toBeUndefined();
      }
    }
  });

  test('next links lead through every match exactly once, also when a resource is created between pages', async () => {
    const paging = (n: number): Patient => ({ resourceType: 'Patient', identifier: [{ system: PAGING, value: `pg-${n}` }], name: [{ family: 'Paging' }] });
    await fx.load({ 'pg-1': paging(1), 'pg-2': paging(2), 'pg-3': paging(3), 'pg-4': paging(4), 'pg-5': paging(5) });
    const originals = ['pg-1', 'pg-2', 'pg-3', 'pg-4', 'pg-5'];

    const first = await get(`Patient?identifier=${PAGING}|&_count=2&_total=accurate`);
    expect(first.status).toBe(200);
    let page = first.body as Bundle;
    expect(page.total).toBe(5);
    // A write between pages must not make the walk skip or repeat any original match.
    await fx.create('pg-6', paging(6));

    const seen: string[] = [];
    const pages: Bundle[] = [page];
    for (;;) {
      const { match } = entriesByMode(page);
      expect(match.length).toBeLessThanOrEqual(2); // "Servers SHALL NOT return more resources than requested"
      seen.push(...match.map((e) => fx.keyOf(e.resource)));
      const next = link(page, 'next');
      if (!next) {
        break;
      }
      expect(pages.length).toBeLessThan(10);
      const res = await server.request().get(pathOf(next));
      expect(res.status).toBe(200);
      page = res.body as Bundle;
      pages.push(page);
    }
    // Every original match exactly once; whether the late one shows up is the server's choice
    // (R4: "It is at the discretion of the search engine as to how to handle ongoing updates").
    expect(sorted(seen.filter((k) => k !== 'pg-6'))).toEqual(originals);
    expect(seen.filter((k) => k === 'pg-6').length).toBeLessThanOrEqual(1);
    expect(pages.length).toBeGreaterThanOrEqual(3);

    pages.forEach((p, i) => {
      expect(p.type).toBe('searchset');
      expect(link(p, 'self')).toBeDefined();
      expect(link(p, 'first')).toBeDefined();
      const previous = link(p, 'previous') ?? link(p, 'prev');
      if (i === 0) {
        expect(previous).toBeUndefined();
      } else {
        expect(previous).toBeDefined();
      }
      if (i === pages.length - 1) {
        expect(link(p, 'next')).toBeUndefined();
      } else {
        expect(link(p, 'next')).toBeDefined();
      }
    });

    // The first link leads back to the first page.
    const again = await server.request().get(pathOf(link(pages[2], 'first')!));
    expect(again.status).toBe(200);
    expect(entriesByMode(again.body as Bundle).match.length).toBeGreaterThan(0);
  });

  test('a sort order holds across pages', async () => {
    expect(await ordered(`Patient?identifier=${RP}|&_sort=family,given&_count=2`)).toEqual(['rp-ann', 'rp-cid', 'rp-bob', 'rp-eli', 'rp-dee']);
  });
});

describe('_sort', () => {
  // R4: "Each item in the comma separated list is a search parameter, optionally with a '-' prefix. The
  // prefix indicates decreasing order"; "When sorting on string search parameters, sorting SHOULD be
  // performed on a case-insensitive basis."
  test.each<[string, string[]]>([
    ['Patient?_id={rp-ann},{rp-bob},{rp-dee}&_sort=birthdate', ['rp-bob', 'rp-ann', 'rp-dee']],
    ['Patient?_id={rp-ann},{rp-bob},{rp-dee}&_sort=-birthdate', ['rp-dee', 'rp-ann', 'rp-bob']],
    // bob and cid share a birth date: the second key decides.
    [`Patient?identifier=${RP}|&birthdate:missing=false&_sort=-birthdate,family`, ['rp-dee', 'rp-ann', 'rp-cid', 'rp-bob']],
    [`Patient?identifier=${RP}|&birthdate:missing=false&_sort=birthdate,-family`, ['rp-bob', 'rp-cid', 'rp-ann', 'rp-dee']],
    [`Patient?identifier=${RP}|&_sort=family,given`, ['rp-ann', 'rp-cid', 'rp-bob', 'rp-eli', 'rp-dee']],
    [`Patient?identifier=${RP}|&_sort=-family,-given`, ['rp-dee', 'rp-eli', 'rp-bob', 'rp-cid', 'rp-ann']],
  ])('%s', async (query, expected) => {
    expect(await ordered(query)).toEqual(expected);
  });

  test('_sort=_lastUpdated', async () => {
    // Update cid, then bob; ann keeps the time of the initial load.
    for (const key of ['rp-cid', 'rp-bob']) {
      await sleep(20);
      const current = (await server.request().get(`/${fx.ref(key)}`)).body as Patient;
      const res = await server.request().put(`/${fx.ref(key)}`).set('Content-Type', FHIR_JSON).send(current);
      expect(res.status).toBe(200);
    }
    expect(await ordered('Patient?_id={rp-ann},{rp-bob},{rp-cid}&_sort=_lastUpdated')).toEqual(['rp-ann', 'rp-cid', 'rp-bob']);
    expect(await ordered('Patient?_id={rp-ann},{rp-bob},{rp-cid}&_sort=-_lastUpdated')).toEqual(['rp-bob', 'rp-cid', 'rp-ann']);
  });
});

describe('_total', () => {
  test('_total=accurate counts all matches, not the page, and not included resources', async () => {
    // R4: "Bundle.total represents the total number of matches, not how many resources are returned in
    // a particular response"; "the Bundle.total only include the total number of matching resources.
    // It does not count extra resources such as OperationOutcome or included resources".
    const all = await get(`Patient?identifier=${RP}|&_total=accurate`);
    expect(all.body.total).toBe(5);
    expect(entriesByMode(all.body as Bundle).match).toHaveLength(5);
    const paged = await get(`Patient?identifier=${RP}|&_total=accurate&_count=2`);
    expect(paged.body.total).toBe(5);
    expect(entriesByMode(paged.body as Bundle).match).toHaveLength(2);
    const withIncludes = await get(`Observation?code=${WEIGHT}&_include=Observation:subject&_total=accurate`);
    expect(withIncludes.body.total).toBe(2);
  });

  test('_total=none still returns the matches (a total, if given, is right)', async () => {
    // R4: "The Bundle.total element is still optional, and the servers can ignore the _total parameter".
    const res = await get(`Patient?identifier=${RP}|&_total=none`);
    expect(res.status).toBe(200);
    expect(sorted(entriesByMode(res.body as Bundle).match.map((e) => fx.keyOf(e.resource)))).toEqual(RP_PATIENTS);
    if (res.body.total !== undefined) {
      expect(res.body.total).toBe(5);
    }
  });
});

describe('_summary and _elements', () => {
  function onlyMatch(res: Response): Patient {
    expect(res.status).toBe(200);
    const { match } = entriesByMode(res.body as Bundle);
    expect(match).toHaveLength(1);
    return match[0].resource as Patient;
  }

  test('_summary=true returns the summary elements only', async () => {
    // Patient summary elements include identifier, name, gender, birthDate, managingOrganization;
    // maritalStatus, communication and generalPractitioner are not summary elements.
    const p = onlyMatch(await get('Patient?_id={rp-dee}&_summary=true'));
    expect(p.id).toBe(fx.id('rp-dee'));
    expect(p.name).toEqual([{ family: 'Gamma', given: ['Dee'] }]);
    expect(p.birthDate).toBe('1990-12-31');
    expect(p.identifier).toBeDefined();
    expect(p.managingOrganization).toBeDefined();
    expect(p.maritalStatus).toBeUndefined();
    expect(p.communication).toBeUndefined();
    expect(p.generalPractitioner).toBeUndefined();
  });

  test('_summary=false returns whole resources', async () => {
    const p = onlyMatch(await get('Patient?_id={rp-dee}&_summary=false'));
    expect(p.maritalStatus).toBeDefined();
    expect(p.generalPractitioner).toBeDefined();
  });

  test('_elements=name returns only the listed elements', async () => {
    // R4: "Only elements that are listed are to be returned."
    const p = onlyMatch(await get('Patient?_id={rp-dee}&_elements=name'));
    expect(p.resourceType).toBe('Patient');
    expect(p.id).toBe(fx.id('rp-dee'));
    expect(p.name).toEqual([{ family: 'Gamma', given: ['Dee'] }]);
    for (const absent of ['birthDate', 'gender', 'identifier', 'maritalStatus', 'generalPractitioner', 'managingOrganization'] as const) {
      expect(p[absent]).toBeUndefined();
    }
  });

  test('_elements does not apply to included resources, nor stop includes', async () => {
    // R4: "The list of elements does not apply to included resources."
    const res = await get('Observation?_id={ob-1}&_elements=code&_include=Observation:subject');
    expect(res.status).toBe(200);
    const { match, include } = entriesByMode(res.body as Bundle);
    expect(match).toHaveLength(1);
    const o = match[0].resource as Observation;
    expect(o.code.coding![0].code).toBe(WEIGHT);
    expect(o.valueQuantity).toBeUndefined();
    expect(o.performer).toBeUndefined();
    expect(include.map((e) => fx.keyOf(e.resource))).toEqual(['rp-ann']);
    expect((include[0].resource as Patient).birthDate).toBe('1980-05-01');
  });
});

describe('_include and _revinclude', () => {
  // R4: "For each returned resource, the server identifies the resources that meet the criteria
  // expressed in the join, and adds to the results, with the entry.search.mode set to "include"".
  // A resource appears once however many matches point to it (entries are unique by fullUrl).
  test.each<[string, string[], string[]]>([
    [`Observation?code=${WEIGHT}&_include=Observation:subject`, ['ob-1', 'ob-3'], ['rp-ann', 'rp-bob']],
    ['Observation?_id={ob-1},{ob-2}&_include=Observation:subject', ['ob-1', 'ob-2'], ['rp-ann']],
    ['Observation?_id={ob-1}&_include=Observation:performer', ['ob-1'], ['pr-1']],
    ['Observation?_id={ob-1}&_include=Observation:subject&_include=Observation:performer', ['ob-1'], ['rp-ann', 'pr-1']],
    ['Observation?_id={ob-1}&_include=Observation:subject:Patient', ['ob-1'], ['rp-ann']], // with a target type
    ['Observation?_id={ob-1}&_include=Observation:subject:Group', ['ob-1'], []],
    ['Observation?_id={ob-2}&_include=Observation:performer', ['ob-2'], []], // no reference: nothing, no error
    // "*": "any search parameter of type=reference be included"
    ['Observation?_id={ob-1}&_include=*', ['ob-1'], ['rp-ann', 'pr-1']],
    // Without :iterate an _include applies to the matches only, so Patient:organization finds nothing here.
    ['Observation?_id={ob-4}&_include=Observation:subject&_include=Patient:organization', ['ob-4'], ['rp-dee']],
    // R4: "The inclusion process can be iterative, if (and only if) the modifier :iterate is included."
    ['Observation?_id={ob-4}&_include=Observation:subject&_include:iterate=Patient:organization', ['ob-4'], ['rp-dee', 'org-1']],
    ['Observation?_id={ob-4}&_include=Observation:subject&_include:iterate=Patient:general-practitioner', ['ob-4'], ['rp-dee', 'pr-1']],
    ['Patient?_id={rp-ann}&_revinclude=Observation:subject', ['rp-ann'], ['ob-1', 'ob-2']],
    ['Patient?family=alpha&_revinclude=Observation:subject', ['rp-ann', 'rp-cid'], ['ob-1', 'ob-2']],
    ['Patient?_id={rp-dee}&_revinclude=Observation:patient', ['rp-dee'], ['ob-4']],
    ['Patient?_id={rp-eli}&_revinclude=Observation:subject', ['rp-eli'], []],
    ['Practitioner?_id={pr-1}&_revinclude=Patient:general-practitioner&_revinclude=Observation:performer', ['pr-1'], ['rp-dee', 'ob-1']],
    ['Patient?_id={rp-dee}&_include=Patient:organization&_revinclude=Observation:subject', ['rp-dee'], ['org-1', 'ob-4']],
  ])('%s', async (query, matches, includes) => {
    const result = await searchAll(server, fx, query);
    expect(sorted(result.matches)).toEqual(sorted(matches));
    expect(sorted(result.includes)).toEqual(sorted(includes));
  });

  test('each page carries the includes of its own matches', async () => {
    // R4: "When search results are paged, each page of search results should include the matching
    // includes for the resources in each page, so that each page stands alone as a coherent package."
    const { pages } = await searchAll(server, fx, `Observation?code=${WEIGHT}&_include=Observation:subject&_count=1`);
    const subjects = { 'ob-1': 'rp-ann', 'ob-3': 'rp-bob' } as Record<string, string>;
    const seen: string[] = [];
    for (const page of pages) {
      const { match, include } = entriesByMode(page);
      const keys = match.map((e) => fx.keyOf(e.resource));
      seen.push(...keys);
      expect(sorted(include.map((e) => fx.keyOf(e.resource)))).toEqual(sorted(keys.map((k) => subjects[k])));
    }
    expect(sorted(seen)).toEqual(['ob-1', 'ob-3']);
  });
});

describe('POST [type]/_search', () => {
  // R4: "the parameters are a series of name=[value] pairs encoded in the URL or as an
  // application/x-www-form-urlencoded submission for a POST".
  test.each<string>([
    'family=alpha',
    'family=alpha&given=ann',
    `code=${WEIGHT}&_include=Observation:subject`,
    'birthdate=ge1975&gender=female',
  ])('%s: the same result as GET', async (form) => {
    const type = form.startsWith('code=') ? 'Observation' : 'Patient';
    const viaGet = await searchAll(server, fx, `${type}?${form}`);
    const res = await server.request().post(`/${type}/_search`).type('form').send(form);
    expect(res.status).toBe(200);
    const bundle = res.body as Bundle;
    expect(bundle.type).toBe('searchset');
    const { match, include } = entriesByMode(bundle);
    expect(sorted(match.map((e) => fx.keyOf(e.resource)))).toEqual(sorted(viaGet.matches));
    expect(sorted(include.map((e) => fx.keyOf(e.resource)))).toEqual(sorted(viaGet.includes));
    expect(viaGet.matches.length).toBeGreaterThan(0);
  });

  test('the form parameters appear in the self link', async () => {
    const res = await server.request().post('/Patient/_search').type('form').send('family=alpha');
    expect(res.status).toBe(200);
    expect(new URL(link(res.body as Bundle, 'self')!).searchParams.get('family')).toBe('alpha');
  });
});

describe('system-level search: GET [base]?_type=...', () => {
  test.each<[string, string[]]>([
    ['?_type=Patient,Observation&_id={rp-ann},{ob-1}', ['rp-ann', 'ob-1']],
    ['?_id={rp-ann},{ob-1},{org-1}', ['rp-ann', 'ob-1', 'org-1']], // no _type: every type
    ['?_type=Observation&_id={rp-ann}', []],
    ['?_type=Patient&family=alpha', ['rp-ann', 'rp-cid']],
    // family is defined for both Patient and Practitioner ("any search parameters shared across the
    // entire set of specified resources may be used").
    ['?_type=Patient,Practitioner&family=house,beta', ['pr-1', 'rp-bob']],
  ])('GET /%s', expectMatches);
});

describe('compartment search: GET Patient/{id}/Observation', () => {
  test.each<[string, string[]]>([
    ['Patient/{rp-ann}/Observation', ['ob-1', 'ob-2']],
    [`Patient/{rp-ann}/Observation?code=${WEIGHT}`, ['ob-1']],
    ['Patient/{rp-bob}/Observation', ['ob-3']],
    ['Patient/{rp-eli}/Observation', []],
    ['Patient/does-not-exist/Observation', []],
  ])('GET /%s', expectMatches);
});

describe('chained parameters', () => {
  // R4: "reference parameters may be "chained" by appending them with a period (.) followed by the
  // name of a search parameter defined for the target resource. This can be done recursively".
  test.each<[string, string[]]>([
    ['Observation?subject:Patient.name=ann', ['ob-1', 'ob-2']],
    ['Observation?subject.name=alpha', ['ob-1', 'ob-2']], // rp-cid is an Alpha too, but has no Observations
    ['Observation?patient.family=beta', ['ob-3']],
    ['Observation?subject:Patient.name=alpha,beta', ['ob-1', 'ob-2', 'ob-3']],
    ['Observation?subject:Patient.birthdate=1990', ['ob-4']],
    ['Observation?subject:Patient.general-practitioner.name=house', ['ob-4']], // two links
    ['Observation?subject:Patient.organization.name=acme', ['ob-4']],
    ['Observation?subject:Patient._id={rp-bob}', ['ob-3']],
    [`Observation?subject:Patient.name=alpha&code=${HEIGHT}`, ['ob-2']],
    ['Observation?performer:Practitioner.family=house&subject:Patient.family=alpha', ['ob-1']],
    ['Observation?subject:Patient.name=nobody', []],
  ])('%s', expectMatches);
});

describe('reverse chaining: _has', () => {
  // R4: "Patient?_has:Observation:patient:code=1234-5 — [...] Patient resources, where the patient
  // resource is referred to by at least one Observation where the observation has a code of 1234";
  // "each _has parameter is processed independently of other _has parameters".
  test.each<[string, string[]]>([
    [`Patient?_has:Observation:subject:code=${WEIGHT}`, ['rp-ann', 'rp-bob']],
    [`Patient?_has:Observation:patient:code=${HEIGHT}`, ['rp-ann']],
    [`Patient?_has:Observation:subject:code=${WEIGHT}&_has:Observation:subject:code=${HEIGHT}`, ['rp-ann']],
    [`Patient?_has:Observation:subject:code=${WEIGHT},${SYSTOLIC}`, ['rp-ann', 'rp-bob', 'rp-dee']],
    [`Patient?_has:Observation:subject:code=${WEIGHT}&family=beta`, ['rp-bob']],
    ['Patient?_has:Observation:subject:code=0000-0', []],
    [`Practitioner?_has:Observation:performer:code=${WEIGHT}`, ['pr-1']],
    [`Practitioner?_has:Observation:performer:code=${HEIGHT}`, []],
  ])('%s', expectMatches);
});

describe('errors', () => {
  test('an unknown parameter is a 400 OperationOutcome naming it', async () => {
    expectOutcome(await get('Patient?nonsense=1'), 400, 'nonsense');
    expectOutcome(await get('Patient?family=alpha&nonsense=1', { Prefer: 'handling=strict' }), 400, 'nonsense');
  });

  test('with Prefer: handling=lenient it is ignored, and left out of the self link', async () => {
    // R4: "Prefer: handling=lenient: Client requests that the server ignore any unknown or unsupported
    // parameter"; the self link carries "the parameters that were actually used to process a search".
    const result = await searchAll(server, fx, 'Patient?family=alpha&nonsense=1', { Prefer: 'handling=lenient' });
    expect(sorted(result.matches)).toEqual(['rp-ann', 'rp-cid']);
    const self = link(result.pages[0], 'self')!;
    expect(self).not.toContain('nonsense');
    expect(new URL(self).searchParams.get('family')).toBe('alpha');
  });

  test.each<[string, string, string]>([
    // R4: "Server SHALL reject any search request that contains [...] a modifier that the server does
    // not support for that parameter [...] using an HTTP 400 error with an OperationOutcome".
    ['Patient?family:fuzzy=alpha', 'family', 'fuzzy'],
    ['Patient?gender:exact=male', 'gender', 'exact'], // :exact is for string parameters
    // "Where the content of the parameter is syntactically incorrect, servers SHOULD return an error."
    ['Patient?birthdate=notadate', 'birthdate', 'notadate'],
    ['Patient?birthdate=2013-13-45', 'birthdate', '2013-13-45'],
    ['Patient?_count=abc', '_count', 'abc'],
    ['Observation?value-quantity=gtfoo', 'value-quantity', 'gtfoo'],
    ['RiskAssessment?probability=high', 'probability', 'high'],
  ])('%s is a 400 naming %s or %s', async (query, name, value) => {
    expectOutcome(await get(query), 400, name, value);
  });

  test('an empty parameter is ignored', async () => {
    // R4: "Note: Empty parameters are not an error - they are just ignored by the server."
    await expectMatches('Patient?family=&_id={rp-ann}', ['rp-ann']);
  });
});

describe('conditional update: PUT [type]?[search]', () => {
  // R4 http.html#cond-update: "No matches, no id provided: The server creates the resource"; "One Match,
  // no resource id provided OR (resource id provided and it matches the found resource): The server
  // performs the update against the matching resource"; "One Match, resource id provided but does not
  // match the resource found: The server returns a 400 Bad Request error"; "Multiple matches: The
  // server returns a 412 Precondition Failed error".
  const body = (value: string, fields: Partial<Patient> = {}): Patient => ({ resourceType: 'Patient', identifier: [{ system: COND, value }], ...fields });
  const put = (query: string, resource: Patient): Promise<Response> => server.request().put(`/${query}`).set('Content-Type', FHIR_JSON).send(resource);

  test('no match creates, one match updates, two matches are 412', async () => {
    const created = await put(`Patient?identifier=${COND}|c-1`, body('c-1', { gender: 'female' }));
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.body.meta.versionId).toBe('1');

    const updated = await put(`Patient?identifier=${COND}|c-1`, body('c-1', { gender: 'other' }));
    expect(updated.status).toBe(200);
    expect(updated.body.id).toBe(id);
    expect(updated.body.meta.versionId).toBe('2');
    expect((await server.request().get(`/Patient/${id}`)).body.gender).toBe('other');

    const withOtherId = await put(`Patient?identifier=${COND}|c-1`, body('c-1', { id: 'some-other-id' }));
    expect(withOtherId.status).toBe(400);

    const second = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(body('c-1'));
    expect(second.status).toBe(201);
    const ambiguous = await put(`Patient?identifier=${COND}|c-1`, body('c-1', { gender: 'male' }));
    expectOutcome(ambiguous, 412);
    expect((await server.request().get(`/Patient/${id}`)).body.gender).toBe('other');
  });

  test('the criteria can be any search parameters', async () => {
    const query = 'Patient?family=Condo&birthdate=1999-09-09';
    const created = await put(query, body('c-2', { name: [{ family: 'Condo' }], birthDate: '1999-09-09' }));
    expect(created.status).toBe(201);
    const updated = await put(query, body('c-2', { name: [{ family: 'Condo' }], birthDate: '1999-09-09', gender: 'male' }));
    expect(updated.status).toBe(200);
    expect(updated.body.id).toBe(created.body.id);
  });

  test('criteria the search does not understand are a 400', async () => {
    expectOutcome(await put('Patient?nonsense=1', body('c-3')), 400, 'nonsense');
  });
});

describe('conditional delete: DELETE [type]?[search]', () => {
  // R4 http.html#cdelete: "No matches or One Match: The server performs an ordinary delete on the
  // matching resource; Multiple matches: A server may choose to delete all the matching resources, or
  // it may choose to return a 412 Precondition Failed error".
  const create = async (value: string): Promise<string> => {
    const res = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send({ resourceType: 'Patient', identifier: [{ system: COND, value }] });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };

  test('one match is deleted', async () => {
    const id = await create('d-1');
    const other = await create('d-keep');
    const res = await server.request().delete(`/Patient?identifier=${COND}|d-1`);
    expect([200, 204]).toContain(res.status);
    expect((await server.request().get(`/Patient/${id}`)).status).toBe(410);
    expect((await server.request().get(`/Patient/${other}`)).status).toBe(200);
    await expectMatches(`Patient?identifier=${COND}|d-1`, []);
  });

  test('no match deletes nothing', async () => {
    const res = await server.request().delete(`/Patient?identifier=${COND}|d-none`);
    expect([200, 204, 404]).toContain(res.status);
  });

  test('several matches: all deleted, or 412 and none', async () => {
    const ids = [await create('d-2'), await create('d-2')];
    const res = await server.request().delete(`/Patient?identifier=${COND}|d-2`);
    const statuses = await Promise.all(ids.map(async (id) => (await server.request().get(`/Patient/${id}`)).status));
    if (res.status === 412) {
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(statuses).toEqual([200, 200]);
    } else {
      expect([200, 204]).toContain(res.status);
      expect(statuses).toEqual([410, 410]);
    }
  });
});
