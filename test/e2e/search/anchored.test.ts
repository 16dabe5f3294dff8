/**
 * Searches that start from an anchor (one patient's references, or one name prefix) with other
 * filters beside it. The store checks every filter that reads only a resource's type and id on the
 * anchor's ids before it reads any resource, and `_lastUpdated` on the resources it reads
 * (src/store/postgres/search-sql.ts anchorSql, byTypeAndId): the results must be those of the
 * filters taken together, whatever the order they are checked in, and pages must still be sorted
 * and complete.
 */
import type { Observation, Patient } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../../support/server';
import { Fixtures, matchKeys, searchAll, sorted, urn } from './support';

const LOINC = 'http://loinc.org';

function obs(subject: string, code: string, status: Observation['status'], date: string, extra: Partial<Observation> = {}): Observation {
  return { resourceType: 'Observation', status, code: { coding: [{ system: LOINC, code }] }, subject: { reference: subject }, effectiveDateTime: date, ...extra };
}

let server: TestServer;
let fx: Fixtures;
beforeAll(async () => {
  server = await startTestServer();
  fx = new Fixtures(server);
  const pa: Patient = { resourceType: 'Patient', id: 'anchor-pa', gender: 'female', name: [{ family: 'Anchorage', given: ['Ada'] }] };
  const pb: Patient = { resourceType: 'Patient', id: 'anchor-pb', gender: 'male', name: [{ family: 'Anchorman', given: ['Bo'] }] };
  await fx.load({
    pa,
    pb,
    pc: { resourceType: 'Patient', gender: 'female', name: [{ family: 'Anchorman', given: ['Cy'] }] },
    a1: obs('Patient/anchor-pa', '29463-7', 'final', '2024-01-01', { valueQuantity: { value: 70, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' } }),
    a2: obs('Patient/anchor-pa', '85354-9', 'final', '2024-02-01'),
    a3: obs('Patient/anchor-pa', '85354-9', 'amended', '2024-03-01'),
    a4: obs('Patient/anchor-pa', '8867-4', 'preliminary', '2024-04-01', { valueQuantity: { value: 60, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' } }),
    a5: obs('Patient/anchor-pa', '85354-9', 'final', '2023-12-01', { performer: [{ reference: urn('pc') }] }),
    b1: obs('Patient/anchor-pb', '85354-9', 'final', '2024-02-15'),
  });
});
afterAll(() => server.close());

describe('a patient anchor with other filters', () => {
  test.each<[string, string[]]>([
    ['subject=Patient/anchor-pa', ['a1', 'a2', 'a3', 'a4', 'a5']],
    [`subject=Patient/anchor-pa&code=${LOINC}|85354-9`, ['a2', 'a3', 'a5']],
    ['patient=anchor-pa&code=85354-9&status=final', ['a2', 'a5']],
    [`subject=Patient/anchor-pa&code:not=${LOINC}|85354-9`, ['a1', 'a4']],
    ['subject=Patient/anchor-pa&code=85354-9,8867-4', ['a2', 'a3', 'a4', 'a5']],
    ['subject=Patient/anchor-pa&_id={a1},{a3},{b1}', ['a1', 'a3']],
    ['subject=Patient/anchor-pa&value-quantity:missing=false', ['a1', 'a4']],
    ['subject=Patient/anchor-pa&value-quantity:missing=true&status=final', ['a2', 'a5']],
    ['subject=Patient/anchor-pa&date=ge2024-02-01&date=lt2024-04-01', ['a2', 'a3']],
    ['subject=Patient/anchor-pa&performer:Patient.name=anchorman', ['a5']],
    ['subject=Patient/anchor-pa&subject:Patient.gender=male', []],
    // _lastUpdated reads the resource, not an index: checked after the others, on what they let through
    ['subject=Patient/anchor-pa&code=85354-9&_lastUpdated=gt2000-01-01', ['a2', 'a3', 'a5']],
    ['subject=Patient/anchor-pa&code=85354-9&_lastUpdated=lt2000-01-01', []],
    ['subject=Patient/anchor-pb&code=85354-9', ['b1']],
  ])('Observation?%s', async (query, expected) => {
    expect(await matchKeys(server, fx, `Observation?${query}`)).toEqual(sorted(expected));
  });

  test('the Patient compartment with a token, sorted by date, newest first', async () => {
    const { matches } = await searchAll(server, fx, `Patient/anchor-pa/Observation?code=${LOINC}|85354-9&_sort=-date`);
    expect(matches).toEqual(['a3', 'a2', 'a5']);
  });

  test('pages of an anchored search with a filter neither skip nor repeat', async () => {
    const { matches, pages } = await searchAll(server, fx, 'Observation?subject=Patient/anchor-pa&status=final,amended&_sort=date&_count=1');
    expect(matches).toEqual(['a5', 'a1', 'a2', 'a3']);
    expect(pages).toHaveLength(4);
  });
});

describe('a name anchor with other filters', () => {
  test.each<[string, string[]]>([
    ['family=Anchor', ['pa', 'pb', 'pc']],
    ['family=Anchorman&gender=female', ['pc']],
    ['name=anchor&gender=male', ['pb']],
    ['family=Anchorman&_id=anchor-pb', ['pb']],
    ['family=Anchorman&_has:Observation:performer:status=final', ['pc']],
    ['family=Anchorage&_lastUpdated=gt2000-01-01', ['pa']],
    ['family=Anchorage&_lastUpdated=lt2000-01-01', []],
  ])('Patient?%s', async (query, expected) => {
    expect(await matchKeys(server, fx, `Patient?${query}`)).toEqual(sorted(expected));
  });
});
