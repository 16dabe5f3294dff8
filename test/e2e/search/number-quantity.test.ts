/**
 * number (FHIR R4 search.html#number) on RiskAssessment.prediction.probability and quantity
 * (search.html#quantity) on Observation.valueQuantity.
 *
 * Precision: "[parameter]=100 Values that equal 100, to 3 significant figures precision, so this is
 * actually searching for values in the range [99.5 ... 100.5)"; "[parameter]=1e2 [...] to 1
 * significant figures precision [...] [95 ... 105)". With a comparison prefix the precision does not
 * widen the value: "When a comparison prefix in the set gt, lt, ge, le, sa & eb is provided, the
 * implicit precision of the number is ignored, and they are treated as if they have arbitrarily high
 * precision" ("gt100: Values that are greater than exactly 100"), while "ne100: Values that are not
 * equal to 100 (actually, in the range 99.5 to 100.5)".
 *
 * Quantity: "[parameter]=[prefix][number]|[system]|[code] matches a quantity with the given unit";
 * "value-quantity=5.4|http://unitsofmeasure.org|mg: [...] a value of 5.4(+/-0.05) mg where mg is
 * understood as a UCUM unit (system/code)"; "value-quantity=5.4||mg: [...] where the unit - either
 * the code (code) or the stated human unit (unit) are "mg""; "value-quantity=5.4: [...] irrespective
 * of the unit". Conversion between units is optional ("may choose"), so no test relies on it.
 */
import type { Observation, Quantity, Resource, RiskAssessment } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../../support/server';
import { Fixtures, matchKeys, sorted, urn } from './support';

const UCUM = 'http://unitsofmeasure.org';

function risk(key: string, probabilities: (number | undefined)[]): RiskAssessment {
  return {
    resourceType: 'RiskAssessment',
    identifier: [{ system: 'urn:test:search:number', value: key }],
    status: 'final',
    subject: { reference: urn('subject') },
    prediction: probabilities.map((p) => (p === undefined ? { qualitativeRisk: { text: 'moderate' } } : { probabilityDecimal: p })),
  };
}

const RISKS: Record<string, RiskAssessment> = {
  'r-02': risk('r-02', [0.2]),
  'r-08': risk('r-08', [0.8]),
  'r-0805': risk('r-0805', [0.805]),
  'r-09': risk('r-09', [0.9]),
  'r-multi': risk('r-multi', [0.1, 0.95]), // several predictions: any of them may match
  'r-none': risk('r-none', [undefined]), // a prediction without probability
};

function obs(key: string, value: Partial<Observation>): Observation {
  return {
    resourceType: 'Observation',
    identifier: [{ system: 'urn:test:search:quantity', value: key }],
    status: 'final',
    code: { text: key },
    subject: { reference: urn('subject') },
    ...value,
  };
}
const q = (value: number, unit: Partial<Quantity>): Partial<Observation> => ({ valueQuantity: { value, ...unit } });
const MG = { unit: 'mg', system: UCUM, code: 'mg' };

const OBSERVATIONS: Record<string, Observation> = {
  'q-54mg': obs('q-54mg', q(5.4, MG)),
  'q-543mg': obs('q-543mg', q(5.43, MG)),
  'q-56mg': obs('q-56mg', q(5.6, MG)),
  'q-4mg': obs('q-4mg', q(4, MG)),
  'q-54g': obs('q-54g', q(5.4, { unit: 'g', system: UCUM, code: 'g' })),
  'q-54unit': obs('q-54unit', q(5.4, { unit: 'mg' })), // a human unit only, no system/code
  'q-54other': obs('q-54other', q(5.4, { unit: 'milligram', system: 'http://example.org/units', code: 'mg' })),
  'q-none': obs('q-none', { valueString: 'not measured' }),
};

let server: TestServer;
let fx: Fixtures;
beforeAll(async () => {
  server = await startTestServer();
  fx = new Fixtures(server);
  await fx.load({ subject: { resourceType: 'Patient', identifier: [{ system: 'urn:test:search:number', value: 'subject' }] }, ...RISKS, ...OBSERVATIONS } as Record<
    string,
    Resource
  >);
});
afterAll(() => server.close());

function expectSearch(type: string): (query: string, expected: string[]) => Promise<void> {
  return async (query, expected) => {
    expect(await matchKeys(server, fx, `${type}?${query}`)).toEqual(sorted(expected));
  };
}

/** `ap` leaves the reach to the server: assert what must and must not match, not the exact set. */
async function expectApproximately(query: string, included: string[], excluded: string[]): Promise<void> {
  const keys = await matchKeys(server, fx, query);
  expect(keys).toEqual(expect.arrayContaining(included));
  for (const k of excluded) {
    expect(keys).not.toContain(k);
  }
}

describe('number: RiskAssessment.prediction.probability', () => {
  test.each<[string, string[]]>([
    ['probability=0.8', ['r-08', 'r-0805']], // [0.75, 0.85)
    ['probability=eq0.8', ['r-08', 'r-0805']],
    ['probability=0.80', ['r-08']], // [0.795, 0.805): 0.805 is out
    ['probability=0.805', ['r-0805']],
    ['probability=8e-1', ['r-08', 'r-0805']], // exponential form, one significant figure: [0.75, 0.85)
    ['probability=0.1,0.2', ['r-02', 'r-multi']], // OR; r-multi's first prediction
    ['probability=0.95', ['r-multi']], // ... or its second
    // R4: "RiskAssessment?probability=gt0.8 — all the Risk Assessments with probability great than
    // 0.8 (could also be probability=gt8e-1 using exponential form)"; precision is ignored.
    ['probability=gt0.8', ['r-0805', 'r-09', 'r-multi']],
    ['probability=gt8e-1', ['r-0805', 'r-09', 'r-multi']],
    ['probability=ge0.8', ['r-08', 'r-0805', 'r-09', 'r-multi']],
    ['probability=lt0.8', ['r-02', 'r-multi']],
    ['probability=le0.8', ['r-02', 'r-08', 'r-multi']],
    ['probability=ne0.8', ['r-02', 'r-09', 'r-multi']], // outside [0.75, 0.85); r-none has no value
    // AND: each parameter is tested on its own, so r-multi matches through 0.95 (gt0.2) and 0.1 (lt0.9).
    ['probability=gt0.2&probability=lt0.9', ['r-08', 'r-0805', 'r-multi']],
    ['probability=gt0.95', []],
    ['probability:missing=true', ['r-none']],
    ['probability:missing=false', ['r-02', 'r-08', 'r-0805', 'r-09', 'r-multi']],
  ])('RiskAssessment?%s', expectSearch('RiskAssessment'));

  test('probability=ap0.8: 0.8 and 0.805 match, 0.2 is not near', () =>
    expectApproximately('RiskAssessment?probability=ap0.8', ['r-08', 'r-0805'], ['r-02', 'r-none']));
});

describe('quantity: Observation value-quantity', () => {
  test.each<[string, string[]]>([
    // Any unit.
    ['value-quantity=5.4', ['q-54mg', 'q-543mg', 'q-54g', 'q-54unit', 'q-54other']], // [5.35, 5.45)
    ['value-quantity=5.40', ['q-54mg', 'q-54g', 'q-54unit', 'q-54other']], // [5.395, 5.405)
    ['value-quantity=5', ['q-54mg', 'q-543mg', 'q-54g', 'q-54unit', 'q-54other']], // [4.5, 5.5)
    ['value-quantity=4', ['q-4mg']],
    ['value-quantity=lt5', ['q-4mg']],
    // system|code: UCUM mg only.
    [`value-quantity=5.4|${UCUM}|mg`, ['q-54mg', 'q-543mg']],
    [`value-quantity=5.40|${UCUM}|mg`, ['q-54mg']],
    [`value-quantity=5.4|${UCUM}|g`, ['q-54g']],
    [`value-quantity=5.4|http://example.org/units|mg`, ['q-54other']],
    // ||code: the code or the human unit, in any system.
    ['value-quantity=5.4||mg', ['q-54mg', 'q-543mg', 'q-54unit', 'q-54other']],
    ['value-quantity=5.4||milligram', ['q-54other']], // its unit
    ['value-quantity=5.4||kg', []],
    // Prefixes: exact comparisons, precision ignored.
    [`value-quantity=gt5.4|${UCUM}|mg`, ['q-543mg', 'q-56mg']],
    [`value-quantity=ge5.4|${UCUM}|mg`, ['q-54mg', 'q-543mg', 'q-56mg']],
    [`value-quantity=gt5|${UCUM}|mg`, ['q-54mg', 'q-543mg', 'q-56mg']], // not [4.5, 5.5)
    [`value-quantity=lt5.43|${UCUM}|mg`, ['q-54mg', 'q-4mg']],
    // R4: "value-quantity=le5.4|http://unitsofmeasure.org|mg — [...] less than 5.4 mg exactly"
    [`value-quantity=le5.4|${UCUM}|mg`, ['q-54mg', 'q-4mg']],
    [`value-quantity=lt5.4|${UCUM}|mg`, ['q-4mg']],
    [`value-quantity=ne5.4|${UCUM}|mg`, ['q-56mg', 'q-4mg']], // UCUM mg outside [5.35, 5.45)
    [`value-quantity=ge5.4|${UCUM}|mg&value-quantity=lt5.5|${UCUM}|mg`, ['q-54mg', 'q-543mg']],
    ['value-quantity=ge5.4&value-quantity=lt5.5', ['q-54mg', 'q-543mg', 'q-54g', 'q-54unit', 'q-54other']],
    [`value-quantity=5.4|${UCUM}|mg,4|${UCUM}|mg`, ['q-54mg', 'q-543mg', 'q-4mg']], // OR
    ['value-quantity:missing=true', ['q-none']],
  ])('Observation?%s', expectSearch('Observation'));

  test('value-quantity=ap5.4|UCUM|mg: 5.4 and 5.43 mg match; 4 mg, and 5.4 g, do not', () =>
    // R4: "ap5.4|http://unitsofmeasure.org|mg — [...] about 5.4 mg [...] (typically, within 10% of the value)"
    expectApproximately(`Observation?value-quantity=ap5.4|${UCUM}|mg`, ['q-54mg', 'q-543mg'], ['q-4mg', 'q-54g', 'q-none']));
});
