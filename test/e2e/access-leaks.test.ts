/**
 * Access leaks: a `patient/*.rs` token for Patient A, against a store holding two patients, must get
 * nothing of Patient B back on any path (read, vread, HEAD, history, type / system / compartment
 * search, chains, `_has`, `_include` / `_revinclude` with `:iterate`, counts, batch, transaction,
 * `$validate`, conditional interactions), and a `patient/*.cruds` token must not write into B's
 * record. Then the scope letters (v1 and v2, granular scopes, `user/` scopes) and 401s.
 *
 * Every response is searched for B's resources: every nested object with a resourceType and id
 * (OperationOutcomes aside), every fullUrl, entry request.url and response.location, the Location
 * and Content-Location headers, and the text of the body (links and OperationOutcomes aside) for a
 * tag every B resource carries and for B's family name. Where the answer is known exactly, the
 * result is compared exactly: a resource of A's returned *because* of something of B's (a chain or
 * `_has` probing B's data) leaks as surely as B's own resource does, and so does a count.
 *
 * The store holds:
 * - Practitioner P, Organization O (outside the Patient compartment: every patient/ token sees them);
 * - Patients A and B, each with 3 Observations (performer P; one vital-signs, two laboratory, LOINC
 *   codes), a Condition, an Encounter (participant P, serviceProvider O) and a MedicationRequest;
 * - cross references: A's second lab Observation is derived from B's vital-signs Observation, and
 *   B's second lab Observation from A's (so includes, revincludes, chains and `_has` have something of
 *   B's to reach from A's record);
 * - a Provenance targeting B's vital-signs Observation, and one targeting A's (and Patient A);
 * - a DocumentReference for B;
 * - a Group with both patients as members. The Group is in both compartments (Group.member is its
 *   Patient-compartment parameter), so it is in A's compartment and A may see it, including the
 *   reference to Patient B it holds. It is therefore not counted among B's resources; what A must
 *   not get through it is Patient B itself (`_include=Group:member`, chains through `member`).
 */
import type { Bundle, BundleEntry, Observation, Resource } from '@medplum/fhirtypes';
import type supertest from 'supertest';
import { BASE_URL, FHIR_JSON, startTestServer, type TestServer } from '../support/server';

jest.setTimeout(120_000);

const IDENT = 'urn:continuum:leak-test:id';
const TAG = 'urn:continuum:leak-test:owner';
/** meta.tag code on every resource of B's record: it must never appear in what A gets. */
const B_MARKER = 'owner-b-7f3a91';
const LOINC = 'http://loinc.org';
const CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const VITAL = { code: '8867-4', display: 'Heart rate' };
const GLUCOSE = { code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma' };
const HEMOGLOBIN = { code: '718-7', display: 'Hemoglobin [Mass/volume] in Blood' };
const VITAL_SIGNS_SCOPE = `patient/Observation.rs?category=${CATEGORY}|vital-signs`;

/** The resources of one patient's record, as ids. */
interface Side {
  label: 'A' | 'B';
  patient: string;
  family: string;
  vital: string;
  glucose: string;
  hemoglobin: string;
  condition: string;
  encounter: string;
  medicationRequest: string;
  provenance: string;
  documentReference?: string;
}

interface Fixture {
  a: Side;
  b: Side;
  practitioner: string;
  organization: string;
  group: string;
  /** Type/id of everything A may see. */
  visibleToA: string[];
  /** Type/id of B's record (the Group aside, see the header comment). */
  forbidden: Set<string>;
  /** An Observation of B's that the admin deleted: a delete marker A must not see (nor a 410). */
  bDeleted: string;
  /** forbidden and bDeleted: what no response to A may name. */
  hidden: Set<string>;
  /** Type/id of everything stored. */
  all: string[];
}

let server: TestServer;
let f: Fixture;
/** `patient/*.rs` for Patient A. */
let asA: supertest.Agent;

const key = (type: string, id: string): string => `${type}/${id}`;
const ofType = (keys: string[], type: string): string[] => keys.filter((k) => k.startsWith(type + '/'));
const idsOf = (keys: string[]): string => keys.map((k) => k.split('/')[1]).join(',');
const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

/** `path?query`, the query encoded (pairs keep repeated parameters). */
function url(path: string, params: Record<string, string> | [string, string][] = []): string {
  const qs = new URLSearchParams(Array.isArray(params) ? params : Object.entries(params)).toString();
  return qs ? `${path}?${qs}` : path;
}

function sideKeys(s: Side): string[] {
  const keys = [
    key('Patient', s.patient),
    key('Observation', s.vital),
    key('Observation', s.glucose),
    key('Observation', s.hemoglobin),
    key('Condition', s.condition),
    key('Encounter', s.encounter),
    key('MedicationRequest', s.medicationRequest),
    key('Provenance', s.provenance),
  ];
  if (s.documentReference) {
    keys.push(key('DocumentReference', s.documentReference));
  }
  return keys;
}

async function create<T extends Resource>(resource: T): Promise<T & { id: string }> {
  const res = await server.request().post(`/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(resource);
  if (res.status !== 201) {
    throw new Error(`Set-up: creating ${resource.resourceType} answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  return res.body as T & { id: string };
}

const meta = (label: 'A' | 'B'): Resource['meta'] => ({ tag: [{ system: TAG, code: label === 'B' ? B_MARKER : 'owner-a' }] });

function obs(label: 'A' | 'B', patient: string, practitioner: string, kind: 'vital' | 'glucose' | 'hemoglobin', derivedFrom?: string): Observation {
  const code = kind === 'vital' ? VITAL : kind === 'glucose' ? GLUCOSE : HEMOGLOBIN;
  const category = kind === 'vital' ? 'vital-signs' : 'laboratory';
  return {
    resourceType: 'Observation',
    meta: meta(label),
    identifier: [{ system: IDENT, value: `${label}-obs-${kind}` }],
    status: 'final',
    category: [{ coding: [{ system: CATEGORY, code: category }] }],
    code: { coding: [{ system: LOINC, ...code }] },
    subject: { reference: `Patient/${patient}` },
    performer: [{ reference: `Practitioner/${practitioner}` }],
    effectiveDateTime: '2024-03-01T10:00:00Z',
    valueQuantity: kind === 'vital' ? { value: 70, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' } : { value: 5, unit: 'g/dL', system: 'http://unitsofmeasure.org', code: 'g/dL' },
    ...(derivedFrom ? { derivedFrom: [{ reference: `Observation/${derivedFrom}` }] } : {}),
  };
}

async function buildFixture(): Promise<Fixture> {
  const practitioner = await create({ resourceType: 'Practitioner', name: [{ family: 'Leakwatch', given: ['Pat'] }] });
  const organization = await create({ resourceType: 'Organization', name: 'Leak Test Clinic' });
  const families = { A: 'Aardvarkleak', B: 'Bumblebeeleak' };
  const patients = {
    A: await create({ resourceType: 'Patient', meta: meta('A'), identifier: [{ system: IDENT, value: 'A-patient' }], name: [{ family: families.A, given: ['Ann'] }] }),
    B: await create({ resourceType: 'Patient', meta: meta('B'), identifier: [{ system: IDENT, value: 'B-patient' }], name: [{ family: families.B, given: ['Bob'] }] }),
  };
  const vitals = {
    A: await create(obs('A', patients.A.id, practitioner.id, 'vital')),
    B: await create(obs('B', patients.B.id, practitioner.id, 'vital')),
  };
  const sides: Partial<Record<'A' | 'B', Side>> = {};
  for (const label of ['A', 'B'] as const) {
    const other = label === 'A' ? 'B' : 'A';
    const pid = patients[label].id;
    const subject = { reference: `Patient/${pid}` };
    const glucose = await create(obs(label, pid, practitioner.id, 'glucose'));
    // The second lab value is derived from the other patient's vital-signs Observation.
    const hemoglobin = await create(obs(label, pid, practitioner.id, 'hemoglobin', vitals[other].id));
    const condition = await create({
      resourceType: 'Condition',
      meta: meta(label),
      subject,
      code: { coding: [{ system: 'http://snomed.info/sct', code: '44054006', display: 'Diabetes mellitus type 2' }] },
    });
    const encounter = await create({
      resourceType: 'Encounter',
      meta: meta(label),
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      subject,
      participant: [{ individual: { reference: `Practitioner/${practitioner.id}` } }],
      serviceProvider: { reference: `Organization/${organization.id}` },
    });
    const medicationRequest = await create({
      resourceType: 'MedicationRequest',
      meta: meta(label),
      status: 'active',
      intent: 'order',
      medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975' }] },
      subject,
      requester: { reference: `Practitioner/${practitioner.id}` },
    });
    // B's Provenance targets only B's Observation (no Patient target, so it is in no compartment
    // and A may not see it); A's also targets Patient A, which puts it in A's compartment.
    const provenance = await create({
      resourceType: 'Provenance',
      meta: meta(label),
      target: label === 'A' ? [{ reference: `Observation/${vitals.A.id}` }, subject] : [{ reference: `Observation/${vitals.B.id}` }],
      recorded: '2024-03-01T10:05:00Z',
      agent: [{ who: { reference: `Practitioner/${practitioner.id}` } }],
    });
    const documentReference =
      label === 'B'
        ? await create({
            resourceType: 'DocumentReference',
            meta: meta('B'),
            status: 'current',
            subject,
            author: [{ reference: `Practitioner/${practitioner.id}` }],
            content: [{ attachment: { contentType: 'text/plain', data: Buffer.from('Discharge letter').toString('base64') } }],
          })
        : undefined;
    sides[label] = {
      label,
      patient: pid,
      family: families[label],
      vital: vitals[label].id,
      glucose: glucose.id,
      hemoglobin: hemoglobin.id,
      condition: condition.id,
      encounter: encounter.id,
      medicationRequest: medicationRequest.id,
      provenance: provenance.id,
      documentReference: documentReference?.id,
    };
  }
  const a = sides.A as Side;
  const b = sides.B as Side;
  const group = await create({
    resourceType: 'Group',
    type: 'person',
    actual: true,
    member: [{ entity: { reference: `Patient/${a.patient}` } }, { entity: { reference: `Patient/${b.patient}` } }],
  });
  const deleted = await create({ ...obs('B', b.patient, practitioner.id, 'glucose'), identifier: [{ system: IDENT, value: 'B-obs-deleted' }] });
  const del = await server.request().delete(`/Observation/${deleted.id}`);
  if (del.status !== 204) {
    throw new Error(`Set-up: deleting answered ${del.status}`);
  }
  const shared = [key('Practitioner', practitioner.id), key('Organization', organization.id), key('Group', group.id)];
  const visibleToA = [...sideKeys(a), ...shared];
  const forbidden = new Set(sideKeys(b));
  return {
    a,
    b,
    practitioner: practitioner.id,
    organization: organization.id,
    group: group.id,
    visibleToA,
    forbidden,
    bDeleted: deleted.id,
    hidden: new Set([...forbidden, key('Observation', deleted.id)]),
    all: [...visibleToA, ...sideKeys(b)],
  };
}

// ---------------------------------------------------------------------------------------------
// Looking for B in a response.

/** Every Type/id a response names: resources (OperationOutcomes aside), fullUrls, request urls, locations. */
function namedKeys(body: unknown): Set<string> {
  const out = new Set<string>();
  const fromUrl = (u: string): void => {
    const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/\d+)?(?:\?.*)?$/.exec(u.startsWith(BASE_URL) ? u.slice(BASE_URL.length) : u);
    if (m) {
      out.add(key(m[1], m[2]));
    }
  };
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach(walk);
      return;
    }
    if (typeof v !== 'object' || v === null) {
      return;
    }
    const o = v as Record<string, unknown>;
    if (o.resourceType === 'OperationOutcome') {
      return;
    }
    if (typeof o.resourceType === 'string' && typeof o.id === 'string') {
      out.add(key(o.resourceType, o.id));
    }
    for (const [k, child] of Object.entries(o)) {
      if ((k === 'fullUrl' || k === 'location') && typeof child === 'string') {
        fromUrl(child);
      } else if (k === 'request' && typeof child === 'object' && child !== null && typeof (child as { url?: unknown }).url === 'string') {
        fromUrl((child as { url: string }).url);
      } else if (k !== 'outcome') {
        walk(child);
      }
    }
  };
  walk(body);
  return out;
}

/** The body's text without OperationOutcomes and Bundle links (which echo the request). */
function contentText(body: unknown): string {
  return JSON.stringify(body, (k, v: unknown) => {
    if (k === 'link' || k === 'outcome') {
      return undefined;
    }
    if (typeof v === 'object' && v !== null && (v as { resourceType?: unknown }).resourceType === 'OperationOutcome') {
      return undefined;
    }
    return v;
  }) ?? '';
}

/** Asserts that nothing of B's record is in the response (body, nested entries, headers). */
function expectNoLeak(res: supertest.Response, what: string): void {
  const leaked = sorted([...namedKeys(res.body)].filter((k) => f.hidden.has(k)));
  for (const h of ['location', 'content-location']) {
    const value = res.headers[h] as string | undefined;
    if (value) {
      leaked.push(...[...namedKeys({ location: value })].filter((k) => f.hidden.has(k)).map((k) => `${k} (${h} header)`));
    }
  }
  const text = contentText(res.body);
  if (text.includes(B_MARKER)) {
    leaked.push("B's owner tag in the body");
  }
  if (text.includes(f.b.family)) {
    leaked.push("B's family name in the body");
  }
  expect({ what, leaked }).toEqual({ what, leaked: [] });
}

/** Type/id of every entry of a searchset Bundle (matches and includes). */
function entryKeys(bundle: Bundle): string[] {
  return sorted((bundle.entry ?? []).flatMap((e) => (e.resource?.id ? [key(e.resource.resourceType, e.resource.id)] : [])));
}

function matchCount(bundle: Bundle): number {
  return (bundle.entry ?? []).filter((e) => e.search?.mode !== 'include').length;
}

const hasNext = (bundle: Bundle): boolean => (bundle.link ?? []).some((l) => l.relation === 'next');

// ---------------------------------------------------------------------------------------------
// Search paths.

interface SearchCase {
  name: string;
  /** Path and query (after set-up). */
  url: () => string;
  /** A form body: POST [type]/_search. */
  form?: () => Record<string, string>;
  /** Exactly these resources in the Bundle (matches and includes). */
  exact?: () => string[];
  /** The Bundle.total expected (`_summary=count`, `_total`). */
  total?: () => number;
  /** Statuses that are acceptable besides 200 (then nothing else is checked but the leak). */
  alsoOk?: number[];
}

const TYPES = ['Patient', 'Observation', 'Condition', 'Encounter', 'MedicationRequest', 'Group', 'Provenance', 'DocumentReference', 'Practitioner', 'Organization'];
const COMPARTMENT_TYPES = ['Observation', 'Condition', 'Encounter', 'MedicationRequest', 'Group', 'Provenance', 'DocumentReference'];

const visible = (type: string): string[] => ofType(f.visibleToA, type);
const allIds = (type: string): string => idsOf(ofType(f.all, type));
const A = (): Side => f.a;
const B = (): Side => f.b;
const o = (id: string): string => key('Observation', id);

const typeCases: SearchCase[] = TYPES.flatMap((t): SearchCase[] => [
  { name: `${t} (no parameters)`, url: () => t, exact: () => visible(t) },
  { name: `${t}?_id=<every ${t} id>`, url: () => url(t, { _id: allIds(t) }), exact: () => visible(t) },
  { name: `POST ${t}/_search (empty form)`, url: () => `${t}/_search`, form: () => ({}), exact: () => visible(t) },
  { name: `POST ${t}/_search _id=<every ${t} id>`, url: () => `${t}/_search`, form: () => ({ _id: allIds(t) }), exact: () => visible(t) },
  { name: `${t}?_summary=count`, url: () => url(t, { _summary: 'count' }), total: () => visible(t).length },
  { name: `${t}?_total=accurate&_count=1`, url: () => url(t, { _total: 'accurate', _count: '1' }), total: () => visible(t).length },
]);

const parameterCases: SearchCase[] = [
  { name: 'Observation?subject=Patient/B', url: () => url('Observation', { subject: `Patient/${B().patient}` }), exact: () => [] },
  { name: 'Observation?patient=B', url: () => url('Observation', { patient: B().patient }), exact: () => [] },
  { name: 'Observation?patient=Patient/B&_total=accurate', url: () => url('Observation', { patient: `Patient/${B().patient}`, _total: 'accurate' }), exact: () => [], total: () => 0 },
  { name: 'Observation?subject=Patient/A', url: () => url('Observation', { subject: `Patient/${A().patient}` }), exact: () => visible('Observation') },
  { name: 'Observation?code=<glucose>', url: () => url('Observation', { code: `${LOINC}|${GLUCOSE.code}` }), exact: () => [o(A().glucose)] },
  { name: 'Observation?code=<glucose>&_summary=count', url: () => url('Observation', { code: `${LOINC}|${GLUCOSE.code}`, _summary: 'count' }), total: () => 1 },
  { name: 'Observation?code=<all three codes>', url: () => url('Observation', { code: [VITAL, GLUCOSE, HEMOGLOBIN].map((c) => `${LOINC}|${c.code}`).join(',') }), exact: () => visible('Observation') },
  { name: 'Observation?category=vital-signs', url: () => url('Observation', { category: `${CATEGORY}|vital-signs` }), exact: () => [o(A().vital)] },
  { name: "Observation?identifier=<B's identifier>", url: () => url('Observation', { identifier: `${IDENT}|B-obs-vital` }), exact: () => [] },
  { name: 'Observation?code:not=<glucose>', url: () => url('Observation', { 'code:not': `${LOINC}|${GLUCOSE.code}` }), exact: () => [o(A().vital), o(A().hemoglobin)] },
  { name: 'Observation?subject:missing=false', url: () => url('Observation', { 'subject:missing': 'false' }), exact: () => visible('Observation') },
  { name: 'Observation?performer=Practitioner/P', url: () => url('Observation', { performer: `Practitioner/${f.practitioner}` }), exact: () => visible('Observation') },
  { name: "Observation?derived-from=<A's vital> (B's lab is derived from it)", url: () => url('Observation', { 'derived-from': `Observation/${A().vital}` }), exact: () => [] },
  { name: 'Observation?_count=1&_total=accurate (paged)', url: () => url('Observation', { _count: '1', _total: 'accurate' }), total: () => 3 },
  { name: 'Observation?_sort=-_lastUpdated&_count=2', url: () => url('Observation', { _sort: '-_lastUpdated', _count: '2' }) },
  { name: 'Patient?family=<B family>', url: () => url('Patient', { family: B().family }), exact: () => [] },
  { name: 'Patient?identifier=<B identifier>', url: () => url('Patient', { identifier: `${IDENT}|B-patient` }), exact: () => [] },
  { name: 'Condition?subject=Patient/B', url: () => url('Condition', { subject: `Patient/${B().patient}` }), exact: () => [] },
  { name: 'Condition?patient=B&_summary=count', url: () => url('Condition', { patient: B().patient, _summary: 'count' }), total: () => 0 },
  { name: 'Encounter?patient=B', url: () => url('Encounter', { patient: B().patient }), exact: () => [] },
  { name: 'Encounter?service-provider=Organization/O', url: () => url('Encounter', { 'service-provider': `Organization/${f.organization}` }), exact: () => visible('Encounter') },
  { name: 'MedicationRequest?patient=B', url: () => url('MedicationRequest', { patient: B().patient }), exact: () => [] },
  { name: 'MedicationRequest?requester=Practitioner/P', url: () => url('MedicationRequest', { requester: `Practitioner/${f.practitioner}` }), exact: () => visible('MedicationRequest') },
  { name: 'DocumentReference?subject=Patient/B', url: () => url('DocumentReference', { subject: `Patient/${B().patient}` }), exact: () => [] },
  { name: 'DocumentReference?author=Practitioner/P', url: () => url('DocumentReference', { author: `Practitioner/${f.practitioner}` }), exact: () => [] },
  { name: "Provenance?target=<B's vital>", url: () => url('Provenance', { target: `Observation/${B().vital}` }), exact: () => [] },
  { name: 'Provenance?agent=Practitioner/P', url: () => url('Provenance', { agent: `Practitioner/${f.practitioner}` }), exact: () => [key('Provenance', A().provenance)] },
  // The Group is in A's compartment (A is a member): A may find it, even by B's membership.
  { name: 'Group?member=Patient/B (the shared Group: A is a member too)', url: () => url('Group', { member: `Patient/${B().patient}` }), exact: () => [key('Group', f.group)] },
];

const systemCases: SearchCase[] = [
  { name: '?_type=Patient,Observation,Condition', url: () => url('', { _type: 'Patient,Observation,Condition' }), exact: () => [...visible('Patient'), ...visible('Observation'), ...visible('Condition')] },
  { name: "?_id=<B's ids> (no _type)", url: () => url('', { _id: idsOf([...f.hidden]) }), exact: () => [] },
  { name: '?_id=<every id> (no _type)', url: () => url('', { _id: idsOf(f.all) }), exact: () => f.visibleToA },
  { name: '?_id=<every id>&_total=accurate&_count=2', url: () => url('', { _id: idsOf(f.all), _total: 'accurate', _count: '2' }), total: () => f.visibleToA.length },
  { name: '?_type=Patient,Observation&_summary=count', url: () => url('', { _type: 'Patient,Observation', _summary: 'count' }), total: () => 4 },
  { name: '?_type=DocumentReference,Provenance&_total=accurate', url: () => url('', { _type: 'DocumentReference,Provenance', _total: 'accurate' }), exact: () => [key('Provenance', A().provenance)], total: () => 1 },
  { name: '?_type=Observation&_id=<every id>', url: () => url('', { _type: 'Observation', _id: idsOf(f.all) }), exact: () => visible('Observation') },
  { name: '?_type=Patient&family=<B family>', url: () => url('', { _type: 'Patient', family: B().family }), exact: () => [] },
  { name: '?_type=Patient,Practitioner,Organization,Group', url: () => url('', { _type: 'Patient,Practitioner,Organization,Group' }), exact: () => [...visible('Patient'), ...visible('Practitioner'), ...visible('Organization'), ...visible('Group')] },
];

const compartmentCases: SearchCase[] = [
  ...COMPARTMENT_TYPES.map(
    (t): SearchCase => ({
      name: `Patient/B/${t}`,
      url: () => `Patient/${B().patient}/${t}`,
      // The shared Group is in B's compartment and in A's: A may see it.
      exact: () => (t === 'Group' ? [key('Group', f.group)] : []),
      alsoOk: [403, 404],
    }),
  ),
  ...COMPARTMENT_TYPES.map((t): SearchCase => ({ name: `Patient/A/${t}`, url: () => `Patient/${A().patient}/${t}`, exact: () => visible(t) })),
  { name: 'Patient/B/Observation?_summary=count', url: () => url(`Patient/${B().patient}/Observation`, { _summary: 'count' }), total: () => 0, alsoOk: [403, 404] },
  { name: 'Patient/B/Observation?_include=Observation:subject', url: () => url(`Patient/${B().patient}/Observation`, { _include: 'Observation:subject' }), exact: () => [], alsoOk: [403, 404] },
];

const chainCases: SearchCase[] = [
  { name: 'Observation?subject:Patient.family=<B family>', url: () => url('Observation', { 'subject:Patient.family': B().family }), exact: () => [] },
  { name: 'Observation?subject.family=<B family>', url: () => url('Observation', { 'subject.family': B().family }), exact: () => [] },
  { name: 'Observation?subject:Patient.family=<A family>', url: () => url('Observation', { 'subject:Patient.family': A().family }), exact: () => visible('Observation') },
  { name: 'Encounter?patient.family=<B family>', url: () => url('Encounter', { 'patient.family': B().family }), exact: () => [] },
  { name: 'Encounter?patient.family=<B family>&_summary=count', url: () => url('Encounter', { 'patient.family': B().family, _summary: 'count' }), total: () => 0 },
  { name: 'Observation?performer:Practitioner.name=Leakwatch', url: () => url('Observation', { 'performer:Practitioner.name': 'Leakwatch' }), exact: () => visible('Observation') },
  // A's lab Observation is derived from B's: a chain into B's Observation must not find it.
  { name: 'Observation?derived-from:Observation.subject=Patient/B', url: () => url('Observation', { 'derived-from:Observation.subject': `Patient/${B().patient}` }), exact: () => [] },
  { name: 'Observation?derived-from:Observation.code=<vital>', url: () => url('Observation', { 'derived-from:Observation.code': `${LOINC}|${VITAL.code}` }), exact: () => [] },
  { name: 'Observation?derived-from:Observation.patient.family=<B family>', url: () => url('Observation', { 'derived-from:Observation.patient.family': B().family }), exact: () => [] },
  { name: 'Group?member:Patient.family=<B family>', url: () => url('Group', { 'member:Patient.family': B().family }), exact: () => [] },
  { name: 'Group?member:Patient.family=<A family>', url: () => url('Group', { 'member:Patient.family': A().family }), exact: () => [key('Group', f.group)] },
  { name: 'Provenance?target:Observation.subject=Patient/B', url: () => url('Provenance', { 'target:Observation.subject': `Patient/${B().patient}` }), exact: () => [] },
  { name: 'Provenance?target:Observation.code=<vital>', url: () => url('Provenance', { 'target:Observation.code': `${LOINC}|${VITAL.code}` }), exact: () => [key('Provenance', A().provenance)] },
  { name: 'Patient?_has:Observation:subject:code=<glucose>', url: () => url('Patient', { '_has:Observation:subject:code': `${LOINC}|${GLUCOSE.code}` }), exact: () => visible('Patient') },
  { name: 'Practitioner?_has:Observation:performer:subject=Patient/B', url: () => url('Practitioner', { '_has:Observation:performer:subject': `Patient/${B().patient}` }), exact: () => [] },
  { name: 'Practitioner?_has:Observation:performer:subject=Patient/A', url: () => url('Practitioner', { '_has:Observation:performer:subject': `Patient/${A().patient}` }), exact: () => visible('Practitioner') },
  { name: "Practitioner?_has:Provenance:agent:target=<B's vital>", url: () => url('Practitioner', { '_has:Provenance:agent:target': `Observation/${B().vital}` }), exact: () => [] },
  { name: 'Practitioner?_has:DocumentReference:author:_id=<B docref>', url: () => url('Practitioner', { '_has:DocumentReference:author:_id': B().documentReference as string }), exact: () => [] },
  { name: 'Organization?_has:Encounter:service-provider:patient=Patient/B', url: () => url('Organization', { '_has:Encounter:service-provider:patient': `Patient/${B().patient}` }), exact: () => [] },
  // B's lab Observation is derived from A's vital-signs one: `_has` must not see B's.
  { name: "Observation?_has:Observation:derived-from:subject=Patient/B", url: () => url('Observation', { '_has:Observation:derived-from:subject': `Patient/${B().patient}` }), exact: () => [] },
  { name: 'Observation?_has:Observation:derived-from:code=<hemoglobin>', url: () => url('Observation', { '_has:Observation:derived-from:code': `${LOINC}|${HEMOGLOBIN.code}` }), exact: () => [] },
  { name: 'Patient?_has:Observation:subject:_has:Provenance:target:agent=Practitioner/P', url: () => url('Patient', { '_has:Observation:subject:_has:Provenance:target:agent': `Practitioner/${f.practitioner}` }), exact: () => visible('Patient') },
  { name: 'Patient?_has:Group:member:_id=<group>', url: () => url('Patient', { '_has:Group:member:_id': f.group }), exact: () => visible('Patient') },
  { name: 'Patient?_has:Observation:subject:code=<glucose>&_summary=count', url: () => url('Patient', { '_has:Observation:subject:code': `${LOINC}|${GLUCOSE.code}`, _summary: 'count' }), total: () => 1 },
];

const includeCases: SearchCase[] = [
  { name: 'Observation?_include=Observation:subject', url: () => url('Observation', { _include: 'Observation:subject' }), exact: () => [...visible('Observation'), ...visible('Patient')] },
  { name: "Observation?_include=Observation:derived-from (A's lab points at B's)", url: () => url('Observation', { _include: 'Observation:derived-from' }), exact: () => visible('Observation') },
  { name: 'Observation?_include=*', url: () => url('Observation', { _include: '*' }), exact: () => [...visible('Observation'), ...visible('Patient'), ...visible('Practitioner')] },
  { name: 'Encounter?_include=Encounter:participant', url: () => url('Encounter', { _include: 'Encounter:participant' }), exact: () => [...visible('Encounter'), ...visible('Practitioner')] },
  { name: 'Encounter?_include=*', url: () => url('Encounter', { _include: '*' }), exact: () => [...visible('Encounter'), ...visible('Patient'), ...visible('Practitioner'), ...visible('Organization')] },
  { name: 'Group?_include=Group:member', url: () => url('Group', { _include: 'Group:member' }), exact: () => [...visible('Group'), ...visible('Patient')] },
  { name: 'Group?_include=*', url: () => url('Group', { _include: '*' }), exact: () => [...visible('Group'), ...visible('Patient')] },
  { name: "Provenance?_include=Provenance:target&_id=<A's and B's>", url: () => url('Provenance', { _include: 'Provenance:target', _id: allIds('Provenance') }), exact: () => [key('Provenance', A().provenance), o(A().vital), key('Patient', A().patient)] },
  { name: 'Practitioner?_revinclude=Observation:performer', url: () => url('Practitioner', { _revinclude: 'Observation:performer' }), exact: () => [...visible('Practitioner'), ...visible('Observation')] },
  { name: 'Practitioner?_revinclude=Provenance:agent', url: () => url('Practitioner', { _revinclude: 'Provenance:agent' }), exact: () => [...visible('Practitioner'), ...visible('Provenance')] },
  { name: 'Practitioner?_revinclude=DocumentReference:author', url: () => url('Practitioner', { _revinclude: 'DocumentReference:author' }), exact: () => visible('Practitioner') },
  { name: 'Practitioner?_revinclude=MedicationRequest:requester', url: () => url('Practitioner', { _revinclude: 'MedicationRequest:requester' }), exact: () => [...visible('Practitioner'), ...visible('MedicationRequest')] },
  { name: 'Organization?_revinclude=Encounter:service-provider', url: () => url('Organization', { _revinclude: 'Encounter:service-provider' }), exact: () => [...visible('Organization'), ...visible('Encounter')] },
  { name: 'Patient?_revinclude=Provenance:target', url: () => url('Patient', { _revinclude: 'Provenance:target' }), exact: () => [...visible('Patient'), ...visible('Provenance')] },
  { name: 'Patient?_revinclude=Group:member', url: () => url('Patient', { _revinclude: 'Group:member' }), exact: () => [...visible('Patient'), ...visible('Group')] },
  { name: 'Observation?_revinclude=Provenance:target', url: () => url('Observation', { _revinclude: 'Provenance:target' }), exact: () => [...visible('Observation'), ...visible('Provenance')] },
  { name: "Observation?_revinclude=Observation:derived-from (B's lab points at A's)", url: () => url('Observation', { _revinclude: 'Observation:derived-from' }), exact: () => visible('Observation') },
  {
    name: 'Practitioner?_revinclude=Observation:performer&_include:iterate=Observation:subject',
    url: () => url('Practitioner', [['_revinclude', 'Observation:performer'], ['_include:iterate', 'Observation:subject']]),
    exact: () => [...visible('Practitioner'), ...visible('Observation'), ...visible('Patient')],
  },
  {
    name: 'Practitioner?_revinclude=Observation:performer&_revinclude:iterate=Provenance:target',
    url: () => url('Practitioner', [['_revinclude', 'Observation:performer'], ['_revinclude:iterate', 'Provenance:target']]),
    exact: () => [...visible('Practitioner'), ...visible('Observation'), ...visible('Provenance')],
  },
  {
    name: 'Practitioner?_revinclude:iterate=Observation:performer&_include:iterate=Observation:derived-from',
    url: () => url('Practitioner', [['_revinclude:iterate', 'Observation:performer'], ['_include:iterate', 'Observation:derived-from']]),
    exact: () => [...visible('Practitioner'), ...visible('Observation')],
  },
  {
    name: 'Patient?_revinclude=Group:member&_include:iterate=Group:member',
    url: () => url('Patient', [['_revinclude', 'Group:member'], ['_include:iterate', 'Group:member']]),
    exact: () => [...visible('Patient'), ...visible('Group')],
  },
  {
    name: 'Organization?_revinclude=Encounter:service-provider&_include:iterate=Encounter:subject&_revinclude:iterate=Observation:subject',
    url: () => url('Organization', [['_revinclude', 'Encounter:service-provider'], ['_include:iterate', 'Encounter:subject'], ['_revinclude:iterate', 'Observation:subject']]),
    exact: () => [...visible('Organization'), ...visible('Encounter'), ...visible('Patient'), ...visible('Observation')],
  },
  {
    name: 'Observation?_revinclude:iterate=Observation:derived-from&_include:iterate=Observation:subject',
    url: () => url('Observation', [['_revinclude:iterate', 'Observation:derived-from'], ['_include:iterate', 'Observation:subject']]),
    exact: () => [...visible('Observation'), ...visible('Patient')],
  },
  {
    name: '?_type=Practitioner,Organization&_revinclude=Observation:performer&_revinclude=Encounter:service-provider',
    url: () => url('', [['_type', 'Practitioner,Organization'], ['_revinclude', 'Observation:performer'], ['_revinclude', 'Encounter:service-provider']]),
    exact: () => [...visible('Practitioner'), ...visible('Organization'), ...visible('Observation'), ...visible('Encounter')],
  },
];

async function runSearchCase(agent: supertest.Agent, c: SearchCase): Promise<void> {
  const path = '/' + c.url();
  const res = c.form ? await agent.post(path).type('form').send(c.form()) : await agent.get(path);
  expectNoLeak(res, c.name);
  if (c.alsoOk?.includes(res.status)) {
    return;
  }
  expect({ case: c.name, status: res.status }).toEqual({ case: c.name, status: 200 });
  const bundle = res.body as Bundle;
  expect(bundle.resourceType).toBe('Bundle');
  if (c.exact) {
    expect({ case: c.name, entries: entryKeys(bundle) }).toEqual({ case: c.name, entries: sorted(c.exact()) });
  }
  if (c.total) {
    expect({ case: c.name, total: bundle.total }).toEqual({ case: c.name, total: c.total() });
  } else if (bundle.total !== undefined && !hasNext(bundle)) {
    // A total must count only what A may see.
    expect({ case: c.name, total: bundle.total }).toEqual({ case: c.name, total: matchCount(bundle) });
  }
}

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  server = await startTestServer();
  f = await buildFixture();
  asA = await server.as('patient/*.rs', { patient: f.a.patient });
});
afterAll(() => server.close());

test('set-up: the admin token sees both records (the leak checks are not vacuous)', async () => {
  const res = await server.request().get('/' + url('', { _id: idsOf(f.all) }));
  expect(res.status).toBe(200);
  expect(entryKeys(res.body as Bundle)).toEqual(sorted(f.all));
  expect(f.forbidden.size).toBe(9);
});

describe('401 without an acceptable token', () => {
  const requests: [string, (agent: supertest.Agent) => supertest.Test][] = [
    ['read', (ag) => ag.get(`/Patient/${f.a.patient}`)],
    ['HEAD read', (ag) => ag.head(`/Patient/${f.a.patient}`)],
    ['vread', (ag) => ag.get(`/Patient/${f.a.patient}/_history/1`)],
    ['type search', (ag) => ag.get('/Observation')],
    ['POST _search', (ag) => ag.post('/Observation/_search').type('form').send({})],
    ['system search', (ag) => ag.get('/?_type=Patient')],
    ['batch', (ag) => ag.post('/').set('Content-Type', FHIR_JSON).send({ resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Patient/${f.a.patient}` } }] })],
    ['system history', (ag) => ag.get('/_history')],
    ['type history', (ag) => ag.get('/Observation/_history')],
    ['instance history', (ag) => ag.get(`/Patient/${f.a.patient}/_history`)],
    ['create', (ag) => ag.post('/Observation').set('Content-Type', FHIR_JSON).send({ resourceType: 'Observation', status: 'final', code: { text: 'x' } })],
  ];
  const tokens: [string, string | undefined][] = [
    ['no token', undefined],
    ['a garbage token', 'not-a-token'],
    ['a forged JWT', 'eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzY29wZSI6InN5c3RlbS8qLmNydWRzIn0.'],
  ];
  test.each(tokens.flatMap(([tname, tok]) => requests.map(([rname, send]) => [`${rname} with ${tname}`, tok, send] as const)))('%s -> 401', async (_name, tok, send) => {
    const agent = server.anonymous();
    if (tok !== undefined) {
      agent.set('Authorization', `Bearer ${tok}`);
    }
    const res = await send(agent);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
    expectNoLeak(res, 'a 401');
  });

  test('GET /metadata needs no token', async () => {
    const res = await server.anonymous().get('/metadata');
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('CapabilityStatement');
  });
});

describe('patient/*.rs for A: read, vread, HEAD and instance history of B’s resources are 404', () => {
  const B_RESOURCES: [string, () => string][] = [
    ['Patient B', () => key('Patient', f.b.patient)],
    ["B's vital-signs Observation", () => o(f.b.vital)],
    ["B's glucose Observation", () => o(f.b.glucose)],
    ["B's hemoglobin Observation", () => o(f.b.hemoglobin)],
    ["B's Condition", () => key('Condition', f.b.condition)],
    ["B's Encounter", () => key('Encounter', f.b.encounter)],
    ["B's MedicationRequest", () => key('MedicationRequest', f.b.medicationRequest)],
    ["B's Provenance", () => key('Provenance', f.b.provenance)],
    ["B's DocumentReference", () => key('DocumentReference', f.b.documentReference as string)],
    ["B's deleted Observation (404, not 410)", () => o(f.bDeleted)],
  ];
  const VARIANTS: [string, (ag: supertest.Agent, k: string) => supertest.Test][] = [
    ['read', (ag, k) => ag.get(`/${k}`)],
    ['vread', (ag, k) => ag.get(`/${k}/_history/1`)],
    ['HEAD', (ag, k) => ag.head(`/${k}`)],
    ['conditional read (If-None-Match: *)', (ag, k) => ag.get(`/${k}`).set('If-None-Match', '*')],
    ['instance history', (ag, k) => ag.get(`/${k}/_history`)],
  ];
  const cases = B_RESOURCES.flatMap(([rname, k]) => VARIANTS.map(([vname, send]) => [`${vname} of ${rname}`, k, send] as const));

  test.each(cases)('%s -> 404', async (_name, k, send) => {
    const res = await send(asA, k());
    expect(res.status).toBe(404);
    expectNoLeak(res, _name);
  });

  // A 404 that differs from the one for an id that does not exist still confirms that B's exists.
  test.each(cases)('%s answers exactly as for an id that does not exist', async (_name, k, send) => {
    const [type, id] = k().split('/');
    const missing = 'does-not-exist-' + id.slice(0, 8);
    const real = await send(asA, k());
    const none = await send(asA, key(type, missing));
    const norm = (res: supertest.Response): unknown => ({ status: res.status, body: JSON.parse(JSON.stringify(res.body ?? {}).split(id).join('ID').split(missing).join('ID')) as unknown });
    expect(norm(real)).toEqual(norm(none));
  });

  test.each(B_RESOURCES)('the admin token reads %s (positive control)', async (_name, k) => {
    expect((await server.request().get(`/${k()}`)).status).toBe(k() === o(f.bDeleted) ? 410 : 200);
  });

  test("A reads every resource of A's own record, P, O and the shared Group", async () => {
    for (const k of f.visibleToA) {
      const res = await asA.get(`/${k}`);
      expect({ k, status: res.status }).toEqual({ k, status: 200 });
      expectNoLeak(res, `read ${k}`);
    }
  });
});

describe('patient/*.rs for A: searches return nothing of B', () => {
  describe('type searches', () => {
    test.each(typeCases.map((c) => [c.name, c] as const))('%s', (_n, c) => runSearchCase(asA, c));
  });
  describe('parameters', () => {
    test.each(parameterCases.map((c) => [c.name, c] as const))('%s', (_n, c) => runSearchCase(asA, c));
  });
  describe('system searches', () => {
    test.each(systemCases.map((c) => [c.name, c] as const))('%s', (_n, c) => runSearchCase(asA, c));
  });
  describe('compartment searches', () => {
    test.each(compartmentCases.map((c) => [c.name, c] as const))('%s', (_n, c) => runSearchCase(asA, c));
  });
  describe('chains and _has', () => {
    test.each(chainCases.map((c) => [c.name, c] as const))('%s', (_n, c) => runSearchCase(asA, c));
  });
  describe('_include and _revinclude', () => {
    test.each(includeCases.map((c) => [c.name, c] as const))('%s', (_n, c) => runSearchCase(asA, c));
  });

  test("paging Observation?_count=1 walks exactly A's Observations", async () => {
    const seen: string[] = [];
    let next: string | undefined = '/Observation?_count=1';
    for (let i = 0; next && i < 20; i++) {
      const res: supertest.Response = await asA.get(next);
      expect(res.status).toBe(200);
      expectNoLeak(res, next);
      seen.push(...entryKeys(res.body as Bundle));
      const link: string | undefined = ((res.body as Bundle).link ?? []).find((l) => l.relation === 'next')?.url;
      next = link?.slice(BASE_URL.length);
    }
    expect(sorted(seen)).toEqual(sorted(visible('Observation')));
  });
});

describe('patient/*.rs for A: history', () => {
  /** Versions in an admin history Bundle that A may see (everything stored is in the fixture). */
  async function visibleVersions(path: string): Promise<number> {
    const res = await server.request().get(`/${path}?_count=1000`);
    expect(res.status).toBe(200);
    const visibleSet = new Set(f.visibleToA);
    return ((res.body as Bundle).entry ?? []).filter((e) => visibleSet.has([...namedKeys({ fullUrl: e.fullUrl })][0])).length;
  }

  /** Makes A's vital-signs Observation the newest version in the store. */
  async function touchA(): Promise<void> {
    const current = await server.request().get(`/Observation/${f.a.vital}`);
    const res = await server.request().put(`/Observation/${f.a.vital}`).set('Content-Type', FHIR_JSON).send({ ...current.body, valueQuantity: { ...current.body.valueQuantity, value: current.body.valueQuantity.value + 1 } });
    expect(res.status).toBe(200);
  }

  test.each(['Observation/_history', '_history', 'Patient/_history', 'DocumentReference/_history', 'Provenance/_history', 'Group/_history'])(
    '%s (everything on one page) has no version of B and no total counting B',
    async (path) => {
      const res = await asA.get(`/${path}?_count=1000`);
      expect(res.status).toBe(200);
      expectNoLeak(res, path);
      const bundle = res.body as Bundle;
      expect(bundle.type).toBe('history');
      const expected = await visibleVersions(path);
      expect((bundle.entry ?? []).length).toBe(expected);
      if (bundle.total !== undefined) {
        expect({ path, total: bundle.total }).toEqual({ path, total: expected });
      }
    },
  );

  test(`Observation/<A's vital>/_history is A's own`, async () => {
    const res = await asA.get(`/Observation/${f.a.vital}/_history`);
    expect(res.status).toBe(200);
    expectNoLeak(res, 'instance history');
  });

  // When the first page happens to hold only A's versions, nothing is filtered out of it, and the
  // store's total (every version of every patient) must still not come through.
  test.each(['Observation/_history?_count=1', '_history?_count=1', 'Observation/_history?_count=2', '_history?_count=2'])(
    '%s (newest versions are A’s): no total counting B’s versions',
    async (path) => {
      await touchA();
      await touchA();
      const res = await asA.get(`/${path}`);
      expect(res.status).toBe(200);
      expectNoLeak(res, path);
      const bundle = res.body as Bundle;
      const expected = await visibleVersions(path.split('?')[0]);
      expect({ path, total: bundle.total }).toEqual({ path, total: bundle.total === undefined ? undefined : expected });
    },
  );

  // Walking the pages one version at a time: a page emptied by the filter (with a `next` link)
  // tells A that a version it may not see is there; the number of pages counts B's versions.
  test.each(['Observation/_history', '_history'])('paging %s?_count=1 has no empty pages (no count of B’s versions)', async (path) => {
    const expected = await visibleVersions(path);
    let next: string | undefined = `/${path}?_count=1`;
    let pages = 0;
    let versions = 0;
    for (; next && pages < 200; pages++) {
      const res: supertest.Response = await asA.get(next);
      expect(res.status).toBe(200);
      expectNoLeak(res, next);
      versions += ((res.body as Bundle).entry ?? []).length;
      next = ((res.body as Bundle).link ?? []).find((l) => l.relation === 'next')?.url?.slice(BASE_URL.length);
    }
    expect(versions).toBe(expected);
    expect({ path, pages }).toEqual({ path, pages: expected });
  });
});

describe('patient/*.rs for A: batch and transaction', () => {
  const readsOfB = (): string[] => [...f.hidden, `Observation/${f.b.vital}/_history/1`, `Observation/${f.b.vital}/_history`, `Observation/${f.bDeleted}/_history/1`];
  const searches = (): [string, string[]][] => [
    [url('Observation', { subject: `Patient/${f.b.patient}` }), []],
    [url('Observation', { patient: f.b.patient }), []],
    [url('Patient', { _id: `${f.a.patient},${f.b.patient}` }), [key('Patient', f.a.patient)]],
    [url('Observation', { 'subject:Patient.family': f.b.family }), []],
    [url('Practitioner', { _revinclude: 'Observation:performer' }), [...visible('Practitioner'), ...visible('Observation')]],
    [url('Observation', { _include: 'Observation:derived-from' }), visible('Observation')],
    [url('', { _id: idsOf([...f.hidden]) }), []],
  ];

  test.each([['without Prefer'], ['with Prefer: return=representation']])('batch of GETs for B’s resources and searches (%s)', async (prefer) => {
    const entries: BundleEntry[] = [...readsOfB(), ...searches().map(([u]) => u)].map((u) => ({ request: { method: 'GET', url: u } }));
    let req = asA.post('/').set('Content-Type', FHIR_JSON);
    if (prefer.startsWith('with')) {
      req = req.set('Prefer', 'return=representation');
    }
    const res = await req.send({ resourceType: 'Bundle', type: 'batch', entry: entries });
    expect(res.status).toBe(200);
    expectNoLeak(res, 'batch');
    const out = (res.body as Bundle).entry ?? [];
    expect(out).toHaveLength(entries.length);
    const reads = readsOfB();
    reads.forEach((u, i) => expect({ u, status: out[i].response?.status }).toEqual({ u, status: '404' }));
    searches().forEach(([u, expected], j) => {
      const e = out[reads.length + j];
      expect({ u, status: e.response?.status }).toEqual({ u, status: '200' });
      if (prefer.startsWith('with')) {
        expect({ u, entries: entryKeys(e.resource as Bundle) }).toEqual({ u, entries: sorted(expected) });
      }
    });
  });

  test('transaction of search GETs: nothing of B', async () => {
    const entries: BundleEntry[] = searches().map(([u]) => ({ request: { method: 'GET', url: u } }));
    const res = await asA.post('/').set('Content-Type', FHIR_JSON).send({ resourceType: 'Bundle', type: 'transaction', entry: entries });
    expect(res.status).toBe(200);
    expectNoLeak(res, 'transaction');
    const out = (res.body as Bundle).entry ?? [];
    searches().forEach(([u, expected], j) => {
      expect({ u, status: out[j].response?.status, entries: entryKeys(out[j].resource as Bundle) }).toEqual({ u, status: '200', entries: sorted(expected) });
    });
  });

  test.each([['read'], ['vread'], ['history']])('transaction with a GET (%s) of B’s Observation fails as a 404', async (kind) => {
    const u = kind === 'read' ? `Observation/${f.b.vital}` : kind === 'vread' ? `Observation/${f.b.vital}/_history/1` : `Observation/${f.b.vital}/_history`;
    const entries: BundleEntry[] = [{ request: { method: 'GET', url: `Patient/${f.a.patient}` } }, { request: { method: 'GET', url: u } }];
    const res = await asA.post('/').set('Content-Type', FHIR_JSON).send({ resourceType: 'Bundle', type: 'transaction', entry: entries });
    expect(res.status).toBe(404);
    expectNoLeak(res, 'transaction');
  });
});

describe('patient/*.rs for A: $validate', () => {
  const body = (): Observation => obs('A', f.a.patient, f.practitioner, 'vital');

  test.each([[''], ['?mode=update'], ['?mode=delete']])('POST Observation/<B vital>/$validate%s answers as for an id that does not exist', async (mode) => {
    const missing = 'does-not-exist-validate';
    const real = await asA.post(`/Observation/${f.b.vital}/$validate${mode}`).set('Content-Type', FHIR_JSON).send({ ...body(), id: f.b.vital });
    const none = await asA.post(`/Observation/${missing}/$validate${mode}`).set('Content-Type', FHIR_JSON).send({ ...body(), id: missing });
    expectNoLeak(real, '$validate');
    const norm = (res: supertest.Response): unknown => ({ status: res.status, body: JSON.parse(JSON.stringify(res.body).split(f.b.vital).join('ID').split(missing).join('ID')) as unknown });
    expect(norm(real)).toEqual(norm(none));
  });
});

describe('scope letters', () => {
  test('patient/Observation.rs: Observation search is A’s; Condition search, Condition read and Observation create are 403', async () => {
    const ag = await server.as('patient/Observation.rs', { patient: f.a.patient });
    const search = await ag.get('/Observation');
    expect(search.status).toBe(200);
    expectNoLeak(search, 'search');
    expect(entryKeys(search.body as Bundle)).toEqual(sorted(visible('Observation')));
    expect((await ag.get('/Condition')).status).toBe(403);
    expect((await ag.get(`/Condition/${f.a.condition}`)).status).toBe(403);
    expect((await ag.get('/Patient')).status).toBe(403);
    const created = await ag.post('/Observation').set('Content-Type', FHIR_JSON).send(obs('A', f.a.patient, f.practitioner, 'vital'));
    expect(created.status).toBe(403);
    // Includes of types the token does not cover are left out.
    const inc = await ag.get('/' + url('Observation', { _include: 'Observation:subject' }));
    expect(inc.status).toBe(200);
    expect(entryKeys(inc.body as Bundle)).toEqual(sorted(visible('Observation')));
    // A chain into a type the token may not search finds nothing of B.
    const chain = await ag.get('/' + url('Observation', { 'subject:Patient.family': f.b.family }));
    expectNoLeak(chain, 'chain');
    expect(chain.status === 403 || entryKeys(chain.body as Bundle).length === 0).toBe(true);
  });

  test('patient/Observation.r (v2, no s): read is allowed, search is 403', async () => {
    const ag = await server.as('patient/Observation.r', { patient: f.a.patient });
    expect((await ag.get(`/Observation/${f.a.vital}`)).status).toBe(200);
    expect((await ag.get(`/Observation/${f.b.vital}`)).status).toBe(404);
    expect((await ag.get('/Observation')).status).toBe(403);
    expect((await ag.post('/Observation/_search').type('form').send({})).status).toBe(403);
    expect((await ag.get('/?_type=Observation')).status).toBe(403);
    expect((await ag.get('/Observation/_history')).status).toBe(403);
    expect((await ag.get(`/Patient/${f.a.patient}/Observation`)).status).toBe(403);
    expect((await ag.get(`/Observation/${f.a.vital}/_history`)).status).toBe(200);
  });

  test('patient/*.read (v1) works like patient/*.rs', async () => {
    const ag = await server.as('patient/*.read', { patient: f.a.patient });
    for (const c of [...typeCases.filter((x) => !x.form), ...includeCases.slice(0, 3), ...chainCases.slice(0, 2)]) {
      await runSearchCase(ag, c);
    }
    expect((await ag.get(`/Observation/${f.b.vital}`)).status).toBe(404);
    expect((await ag.get(`/Observation/${f.a.vital}`)).status).toBe(200);
    expect((await ag.post('/Observation').set('Content-Type', FHIR_JSON).send(obs('A', f.a.patient, f.practitioner, 'vital'))).status).toBe(403);
  });

  test('patient/*.rs without a patient in context sees nothing (403)', async () => {
    const ag = await server.as('patient/*.rs');
    for (const path of ['/Observation', `/Observation/${f.a.vital}`, `/Observation/${f.b.vital}`, '/Patient', '/Practitioner', '/?_type=Observation', '/_history', '/Observation/_history']) {
      const res = await ag.get(path);
      expect({ path, status: res.status }).toEqual({ path, status: 403 });
      expectNoLeak(res, path);
    }
  });

  test('user/*.rs without a fhirUser sees nothing (403)', async () => {
    const ag = await server.as('user/*.rs');
    for (const path of ['/Observation', `/Observation/${f.a.vital}`, '/Patient']) {
      expect({ path, status: (await ag.get(path)).status }).toEqual({ path, status: 403 });
    }
  });

  test('user/*.rs with fhirUser Patient/A behaves like patient A', async () => {
    const ag = await server.as('user/*.rs', { fhirUser: `Patient/${f.a.patient}` });
    for (const c of [...typeCases.filter((x) => !x.form), ...systemCases, ...includeCases, ...chainCases]) {
      await runSearchCase(ag, c);
    }
    for (const k of f.forbidden) {
      expect({ k, status: (await ag.get(`/${k}`)).status }).toEqual({ k, status: 404 });
    }
  });

  test('user/*.rs with a Practitioner fhirUser sees both patients', async () => {
    const ag = await server.as('user/*.rs', { fhirUser: `Practitioner/${f.practitioner}` });
    const patients = await ag.get('/Patient');
    expect(entryKeys(patients.body as Bundle)).toEqual(sorted([key('Patient', f.a.patient), key('Patient', f.b.patient)]));
    const observations = await ag.get('/Observation');
    expect(entryKeys(observations.body as Bundle)).toEqual(sorted(ofType(f.all, 'Observation')));
    expect((await ag.get(`/Observation/${f.b.vital}`)).status).toBe(200);
    expect((await ag.get('/' + url('', { _id: idsOf(f.all) }))).body.entry).toHaveLength(f.all.length);
  });

  test(`granular ${VITAL_SIGNS_SCOPE}: only A's vital signs`, async () => {
    const ag = await server.as(VITAL_SIGNS_SCOPE, { patient: f.a.patient });
    const search = await ag.get('/Observation');
    expect(search.status).toBe(200);
    expectNoLeak(search, 'granular search');
    expect(entryKeys(search.body as Bundle)).toEqual([o(f.a.vital)]);
    const count = await ag.get('/Observation?_summary=count');
    expect(count.body.total).toBe(1);
    const labs = await ag.get('/' + url('Observation', { category: `${CATEGORY}|laboratory`, _total: 'accurate' }));
    expect(entryKeys(labs.body as Bundle)).toEqual([]);
    expect(labs.body.total).toBe(0);
    const chained = await ag.get('/' + url('Observation', { _revinclude: 'Observation:derived-from', _include: 'Observation:derived-from' }));
    expect(entryKeys(chained.body as Bundle)).toEqual([o(f.a.vital)]);
    const has = await ag.get('/' + url('Observation', { '_has:Observation:derived-from:code': `${LOINC}|${HEMOGLOBIN.code}` }));
    expect(entryKeys(has.body as Bundle)).toEqual([]);
    expect((await ag.get(`/Observation/${f.a.vital}`)).status).toBe(200);
    expect((await ag.get(`/Observation/${f.a.glucose}`)).status).toBe(404);
    expect((await ag.get(`/Observation/${f.a.hemoglobin}`)).status).toBe(404);
    expect((await ag.get(`/Observation/${f.a.glucose}/_history/1`)).status).toBe(404);
    expect((await ag.get(`/Observation/${f.b.vital}`)).status).toBe(404);
    expect((await ag.get('/Condition')).status).toBe(403);
    for (const path of ['/' + url('', { _type: 'Observation,Condition' }), '/' + url('', { _id: idsOf(f.all) })]) {
      const sys = await ag.get(path);
      expect({ path, status: sys.status, entries: entryKeys(sys.body as Bundle) }).toEqual({ path, status: 200, entries: [o(f.a.vital)] });
    }
    const hist = await ag.get('/Observation/_history');
    expect(hist.status).toBe(200);
    expectNoLeak(hist, 'granular history');
    for (const e of (hist.body as Bundle).entry ?? []) {
      expect(e.fullUrl).toBe(`${BASE_URL}/Observation/${f.a.vital}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Writes. Everything of B's is snapshotted with the admin token before and compared after.

describe('patient/*.cruds for A: conditional interactions do not reach B', () => {
  let asAw: supertest.Agent;
  let before: Map<string, unknown>;
  beforeAll(async () => {
    asAw = await server.as('patient/*.cruds', { patient: f.a.patient });
    before = new Map();
    for (const k of f.forbidden) {
      before.set(k, (await server.request().get(`/${k}`)).body);
    }
  });
  afterEach(async () => {
    for (const k of f.forbidden) {
      const now = await server.request().get(`/${k}`);
      expect({ k, status: now.status, body: now.body as unknown }).toEqual({ k, status: 200, body: before.get(k) });
    }
  });

  test("search Observation?identifier=<B's> is empty", async () => {
    const res = await asAw.get('/' + url('Observation', { identifier: `${IDENT}|B-obs-vital` }));
    expect(entryKeys(res.body as Bundle)).toEqual([]);
  });

  test("create for A with If-None-Exist: identifier=<B's> creates (does not find B's)", async () => {
    const res = await asAw
      .post('/Observation')
      .set('Content-Type', FHIR_JSON)
      .set('If-None-Exist', `identifier=${IDENT}|B-obs-vital`)
      .send({ ...obs('A', f.a.patient, f.practitioner, 'glucose'), identifier: [{ system: IDENT, value: 'B-obs-vital' }], category: undefined });
    expectNoLeak(res, 'conditional create');
    expect(res.status).toBe(201);
    expect(res.body.id).not.toBe(f.b.vital);
    expect(res.body.subject.reference).toBe(`Patient/${f.a.patient}`);
  });

  test("transaction entry for A with ifNoneExist identifier=<B's> creates", async () => {
    const res = await asAw
      .post('/')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ fullUrl: 'urn:uuid:2b1f5c0e-1111-4a55-9c44-000000000001', resource: { ...obs('A', f.a.patient, f.practitioner, 'glucose'), identifier: [{ system: IDENT, value: 'B-obs-glucose' }], category: undefined }, request: { method: 'POST', url: 'Observation', ifNoneExist: `identifier=${IDENT}|B-obs-glucose` } }],
      });
    expectNoLeak(res, 'transaction conditional create');
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response.status).toBe('201');
  });

  test("conditional update by B's identifier with a body for A creates a new resource", async () => {
    const res = await asAw
      .put('/' + url('Observation', { identifier: `${IDENT}|B-obs-hemoglobin` }))
      .set('Content-Type', FHIR_JSON)
      .send({ ...obs('A', f.a.patient, f.practitioner, 'glucose'), identifier: [{ system: IDENT, value: 'B-obs-hemoglobin' }], category: undefined });
    expectNoLeak(res, 'conditional update');
    expect(res.status).toBe(201);
    expect(res.body.id).not.toBe(f.b.hemoglobin);
  });

  test("conditional update by B's identifier with a body for B is 403, nothing stored", async () => {
    const res = await asAw
      .put('/' + url('Observation', { identifier: `${IDENT}|B-only-identifier` }))
      .set('Content-Type', FHIR_JSON)
      .send({ ...obs('B', f.b.patient, f.practitioner, 'glucose'), identifier: [{ system: IDENT, value: 'B-only-identifier' }] });
    expect(res.status).toBe(403);
    const stored = await server.request().get('/' + url('Observation', { identifier: `${IDENT}|B-only-identifier`, _summary: 'count' }));
    expect(stored.body.total).toBe(0);
  });

  test("conditional update by B's identifier with B's id in a body for A is refused", async () => {
    const res = await asAw
      .put('/' + url('Observation', { identifier: `${IDENT}|B-obs-vital-unused` }))
      .set('Content-Type', FHIR_JSON)
      .send({ ...obs('A', f.a.patient, f.practitioner, 'vital'), id: f.b.vital, identifier: [{ system: IDENT, value: 'B-obs-vital-unused' }] });
    expectNoLeak(res, 'conditional update');
    expect([403, 404]).toContain(res.status);
  });

  test("conditional delete by B's identifier is 404 and deletes nothing", async () => {
    const res = await asAw.delete('/' + url('Observation', { identifier: `${IDENT}|B-obs-glucose` }));
    expectNoLeak(res, 'conditional delete');
    // The transaction above created an A Observation with this identifier: it may be the one deleted.
    expect([204, 404]).toContain(res.status);
    const res2 = await asAw.delete('/' + url('Observation', { identifier: `${IDENT}|B-obs-glucose` }));
    expect(res2.status).toBe(404);
    const res3 = await asAw.delete('/' + url('Patient', { identifier: `${IDENT}|B-patient` }));
    expect(res3.status).toBe(404);
  });

  test("a transaction with a conditional reference to Patient B does not resolve it", async () => {
    const res = await asAw
      .post('/')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ resource: { ...obs('A', f.a.patient, f.practitioner, 'vital'), identifier: [{ system: IDENT, value: 'cond-ref' }], subject: { reference: `Patient?identifier=${IDENT}|B-patient` } }, request: { method: 'POST', url: 'Observation' } }],
      });
    expectNoLeak(res, 'conditional reference');
    expect(res.status).toBe(404);
    const stored = await server.request().get('/' + url('Observation', { identifier: `${IDENT}|cond-ref`, _summary: 'count' }));
    expect(stored.body.total).toBe(0);
  });
});

describe('patient/*.cruds for A: writes into B’s record are refused and change nothing', () => {
  let asAw: supertest.Agent;
  let before: Map<string, unknown>;
  /** An Observation of A's made for these tests. */
  let mine: Observation & { id: string };

  beforeAll(async () => {
    asAw = await server.as('patient/*.cruds', { patient: f.a.patient });
    mine = await create({ ...obs('A', f.a.patient, f.practitioner, 'glucose'), identifier: [{ system: IDENT, value: 'A-mine' }] });
    before = new Map();
    for (const k of [...f.forbidden, o(mine.id)]) {
      before.set(k, (await server.request().get(`/${k}`)).body);
    }
  });
  afterEach(async () => {
    for (const k of [...f.forbidden, o(mine.id)]) {
      const now = await server.request().get(`/${k}`);
      expect({ k, status: now.status, body: now.body as unknown }).toEqual({ k, status: 200, body: before.get(k) });
    }
  });

  const countIdentifier = async (value: string): Promise<number> => (await server.request().get('/' + url('Observation', { identifier: `${IDENT}|${value}`, _summary: 'count' }))).body.total as number;
  const bObs = (): Observation => before.get(o(f.b.vital)) as Observation;

  test('create an Observation for B -> 403, nothing stored', async () => {
    const res = await asAw.post('/Observation').set('Content-Type', FHIR_JSON).send({ ...obs('B', f.b.patient, f.practitioner, 'vital'), identifier: [{ system: IDENT, value: 'W-create-B' }] });
    expect(res.status).toBe(403);
    expect(await countIdentifier('W-create-B')).toBe(0);
  });

  test('update-as-create of an Observation for B -> 403, nothing stored', async () => {
    const res = await asAw.put('/Observation/new-for-b').set('Content-Type', FHIR_JSON).send({ ...obs('B', f.b.patient, f.practitioner, 'vital'), id: 'new-for-b' });
    expect(res.status).toBe(403);
    expect((await server.request().get('/Observation/new-for-b')).status).toBe(404);
  });

  test('create a Patient other than A -> 403', async () => {
    const res = await asAw.post('/Patient').set('Content-Type', FHIR_JSON).send({ resourceType: 'Patient', name: [{ family: 'Intruder' }] });
    expect(res.status).toBe(403);
    expect((await server.request().get('/Patient?family=Intruder&_summary=count')).body.total).toBe(0);
  });

  test("update A's Observation to point at B -> 403, unchanged", async () => {
    const res = await asAw.put(`/Observation/${mine.id}`).set('Content-Type', FHIR_JSON).send({ ...mine, subject: { reference: `Patient/${f.b.patient}` } });
    expect(res.status).toBe(403);
  });

  test("patch A's Observation to point at B -> 403, unchanged", async () => {
    const res = await asAw
      .patch(`/Observation/${mine.id}`)
      .set('Content-Type', 'application/json-patch+json')
      .send(JSON.stringify([{ op: 'replace', path: '/subject/reference', value: `Patient/${f.b.patient}` }]));
    expect(res.status).toBe(403);
  });

  test("update B's Observation -> 403 or 404, unchanged", async () => {
    const res = await asAw.put(`/Observation/${f.b.vital}`).set('Content-Type', FHIR_JSON).send({ ...bObs(), status: 'amended' });
    expectNoLeak(res, 'update');
    expect([403, 404]).toContain(res.status);
  });

  test("update B's Observation to make it A's -> 403 or 404, unchanged", async () => {
    const res = await asAw.put(`/Observation/${f.b.vital}`).set('Content-Type', FHIR_JSON).send({ ...bObs(), meta: undefined, subject: { reference: `Patient/${f.a.patient}` } });
    expectNoLeak(res, 'update');
    expect([403, 404]).toContain(res.status);
  });

  test("update Patient B -> 403 or 404, unchanged", async () => {
    const p = before.get(key('Patient', f.b.patient)) as Resource;
    const res = await asAw.put(`/Patient/${f.b.patient}`).set('Content-Type', FHIR_JSON).send({ ...p, meta: undefined, gender: 'other' });
    expectNoLeak(res, 'update');
    expect([403, 404]).toContain(res.status);
  });

  test("patch B's Observation -> 403 or 404, unchanged", async () => {
    const res = await asAw
      .patch(`/Observation/${f.b.vital}`)
      .set('Content-Type', 'application/json-patch+json')
      .send(JSON.stringify([{ op: 'replace', path: '/status', value: 'amended' }]));
    expectNoLeak(res, 'patch');
    expect([403, 404]).toContain(res.status);
  });

  test.each([['Observation (vital)'], ['Patient'], ['DocumentReference']])("delete B's %s -> 403 or 404, unchanged", async (what) => {
    const k = what === 'Patient' ? key('Patient', f.b.patient) : what === 'DocumentReference' ? key('DocumentReference', f.b.documentReference as string) : o(f.b.vital);
    const res = await asAw.delete(`/${k}`);
    expectNoLeak(res, 'delete');
    expect([403, 404]).toContain(res.status);
  });

  test('a transaction with one entry for A and one for B fails as a whole, nothing stored', async () => {
    const res = await asAw
      .post('/')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:2b1f5c0e-2222-4a55-9c44-000000000001', resource: { ...obs('A', f.a.patient, f.practitioner, 'vital'), identifier: [{ system: IDENT, value: 'T-good' }] }, request: { method: 'POST', url: 'Observation' } },
          { fullUrl: 'urn:uuid:2b1f5c0e-2222-4a55-9c44-000000000002', resource: { ...obs('B', f.b.patient, f.practitioner, 'vital'), identifier: [{ system: IDENT, value: 'T-bad' }] }, request: { method: 'POST', url: 'Observation' } },
        ],
      });
    expectNoLeak(res, 'transaction');
    expect(res.status).toBe(403);
    expect(await countIdentifier('T-good')).toBe(0);
    expect(await countIdentifier('T-bad')).toBe(0);
  });

  test("a transaction updating A's Observation and deleting B's fails as a whole", async () => {
    const res = await asAw
      .post('/')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { resource: { ...mine, status: 'amended' }, request: { method: 'PUT', url: `Observation/${mine.id}` } },
          { request: { method: 'DELETE', url: `Observation/${f.b.vital}` } },
        ],
      });
    expectNoLeak(res, 'transaction');
    expect([403, 404]).toContain(res.status);
  });

  test("a batch entry for B is refused while A's entry is stored", async () => {
    const res = await asAw
      .post('/')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { resource: { ...obs('A', f.a.patient, f.practitioner, 'vital'), identifier: [{ system: IDENT, value: 'Batch-good' }] }, request: { method: 'POST', url: 'Observation' } },
          { resource: { ...obs('B', f.b.patient, f.practitioner, 'vital'), identifier: [{ system: IDENT, value: 'Batch-bad' }] }, request: { method: 'POST', url: 'Observation' } },
        ],
      });
    expectNoLeak(res, 'batch');
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: BundleEntry) => e.response?.status)).toEqual(['201', '403']);
    expect(await countIdentifier('Batch-good')).toBe(1);
    expect(await countIdentifier('Batch-bad')).toBe(0);
  });

  test('$reindex needs a system token', async () => {
    expect((await asAw.post('/$reindex')).status).toBe(403);
    expect((await asAw.post('/Observation/$reindex')).status).toBe(403);
  });

  test("A may still write A's own record (positive control)", async () => {
    const created = await asAw.post('/Observation').set('Content-Type', FHIR_JSON).send({ ...obs('A', f.a.patient, f.practitioner, 'vital'), identifier: [{ system: IDENT, value: 'W-own' }] });
    expect(created.status).toBe(201);
    const updated = await asAw.put(`/Observation/${created.body.id}`).set('Content-Type', FHIR_JSON).send({ ...created.body, status: 'amended' });
    expect(updated.status).toBe(200);
    expect((await asAw.delete(`/Observation/${created.body.id}`)).status).toBe(204);
  });
});

describe('patient/*.cruds for A: subscriptions and bots do not reach B', () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  let asAw: supertest.Agent;

  beforeAll(async () => {
    asAw = await server.as('patient/*.cruds', { patient: f.a.patient });
    // The server's own automation: a bot that returns B's Observation, a websocket Subscription
    // and a rest-hook Subscription (with a secret) on every Observation.
    const admin = server.request();
    await admin
      .put('/Library/leak-bot')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Library',
        id: 'leak-bot',
        name: 'leak-bot',
        status: 'active',
        type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/library-type', code: 'logic-library' }] },
        extension: [{ url: 'http://continuum-ccm.org/fhir/StructureDefinition/bot-scope', valueString: 'system/*.rs' }],
        content: [{ contentType: 'text/typescript', data: b64(`export async function handler(e: any, ctx: any) { return ctx.fhir.readResource('Observation', '${f.b.vital}'); }`) }],
      })
      .expect(201);
    await admin.put('/Subscription/leak-ws').set('Content-Type', FHIR_JSON).send({ resourceType: 'Subscription', id: 'leak-ws', status: 'active', reason: 'x', criteria: 'Observation', channel: { type: 'websocket' } }).expect(201);
    await admin
      .put('/Subscription/leak-hook')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Subscription',
        id: 'leak-hook',
        status: 'off',
        reason: 'x',
        criteria: 'Observation',
        channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:9/hook', header: ['Authorization: Bearer secret-b'] },
        extension: [{ url: 'http://continuum-ccm.org/fhir/StructureDefinition/subscription-secret', valueString: 'hmac-secret' }],
      })
      .expect(201);
  });

  test("running a bot is refused (its result could be B's data)", async () => {
    const res = await asAw.post('/Library/leak-bot/$execute').set('Content-Type', FHIR_JSON).send({ resourceType: 'Parameters' });
    expectNoLeak(res, '$execute');
    expect(res.status).toBe(403);
  });

  test('Subscriptions (endpoints, headers, secrets) are not readable, searchable or bindable', async () => {
    for (const path of ['/Subscription/leak-hook', '/Subscription', '/Subscription/leak-ws/$get-ws-binding-token', '/Subscription/leak-hook/_history']) {
      const res = await asAw.get(path);
      expect({ path, status: res.status }).toEqual({ path, status: 403 });
      expect(JSON.stringify(res.body)).not.toContain('secret');
    }
  });

  test('creating a Subscription on a compartment type, or one with _has/chained criteria, is refused', async () => {
    const sub = (criteria: string): object => ({ resourceType: 'Subscription', status: 'active', reason: 'x', criteria, channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:9/x' } });
    for (const criteria of ['Observation', `Observation?subject=Patient/${f.b.patient}`, `Practitioner?_has:Observation:performer:subject=Patient/${f.b.patient}`]) {
      const res = await asAw.post('/Subscription').set('Content-Type', FHIR_JSON).send(sub(criteria));
      expect({ criteria, status: res.status }).toEqual({ criteria, status: 403 });
    }
  });
});
