import { toCanonical } from '../../../src/search/extract';
import { glucose } from './fixtures';
import { extract, rowsOf } from './helpers';

const UCUM = 'http://unitsofmeasure.org';

function observationWith(valueQuantity: object): { resourceType: string; [key: string]: unknown } {
  return { resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueQuantity };
}

describe('quantity parameters', () => {
  test('value + system + code + unit, and the canonical UCUM form', () => {
    const rows = rowsOf(extract(glucose), 'quantity', 'value-quantity');
    expect(rows).toEqual([
      {
        value: 6.3,
        low: 6.3,
        high: 6.3,
        system: UCUM,
        unitCode: 'mmol/L',
        unit: 'mmol/l',
        canonicalValue: expect.any(Number),
        canonicalUnit: 'm-3',
      },
    ]);
    // mol is a count in UCUM (the library's Avogadro constant, 6.0221367e23): 6.3 mmol/L = 6.3 mol/m3.
    expect(rows[0].canonicalValue! / (6.3 * 6.0221367e23)).toBeCloseTo(1, 12);
  });

  test.each([
    [{ value: 100, system: UCUM, code: 'mg/dL' }, 1000, 'g.m-3'],
    [{ value: 1, system: UCUM, code: 'g/L' }, 1000, 'g.m-3'],
    [{ value: 72.5, system: UCUM, code: 'kg' }, 72500, 'g'],
    [{ value: 90, system: UCUM, code: 'min' }, 5400, 's'],
    [{ value: 37, system: UCUM, code: 'Cel' }, 310.15, 'K'],
    [{ value: 98.6, system: UCUM, code: '[degF]' }, 310.15, 'K'],
    [{ value: 50, system: UCUM, code: '%' }, 0.5, '1'],
  ])('canonical form of %j', (q, value, unit) => {
    const [row] = rowsOf(extract(observationWith(q)), 'quantity', 'value-quantity');
    expect(row.canonicalValue).toBeCloseTo(value, 6);
    expect(row.canonicalUnit).toBe(unit);
  });

  test('mg/dL and g/L compare equal in canonical form', () => {
    expect(toCanonical(100, 'mg/dL')).toEqual(toCanonical(1, 'g/L'));
  });

  test.each([
    [{ value: 3, system: 'http://snomed.info/sct', code: '258684004' }],
    [{ value: 3, system: UCUM, code: 'not-a-unit' }],
    [{ value: 3, unit: 'tablets' }],
  ])('no canonical form without a valid UCUM code: %j', (q) => {
    const [row] = rowsOf(extract(observationWith(q)), 'quantity', 'value-quantity');
    expect(row.value).toBe(3);
    expect([row.canonicalValue, row.canonicalUnit]).toEqual([null, null]);
  });

  test.each([
    ['<', -Infinity, 5],
    ['<=', -Infinity, 5],
    ['>', 5, Infinity],
    ['>=', 5, Infinity],
  ])('comparator %s widens the range', (comparator, low, high) => {
    const [row] = rowsOf(extract(observationWith({ value: 5, comparator, system: UCUM, code: 'mmol/L' })), 'quantity', 'value-quantity');
    expect([row.value, row.low, row.high]).toEqual([5, low, high]);
  });

  test('a Quantity without a value gives no row', () => {
    expect(rowsOf(extract(observationWith({ unit: 'mg', system: UCUM, code: 'mg' })), 'quantity', 'value-quantity')).toEqual([]);
  });

  test('Age and Range under choice types (Condition onset-age)', () => {
    const age = extract({ resourceType: 'Condition', onsetAge: { value: 52, unit: 'yr', system: UCUM, code: 'a' } });
    expect(rowsOf(age, 'quantity', 'onset-age')).toEqual([
      { value: 52, low: 52, high: 52, system: UCUM, unitCode: 'a', unit: 'yr', canonicalValue: 52 * 31557600, canonicalUnit: 's' },
    ]);
    const range = extract({
      resourceType: 'Condition',
      onsetRange: { low: { value: 40, unit: 'yr', system: UCUM, code: 'a' }, high: { value: 45, unit: 'yr', system: UCUM, code: 'a' } },
    });
    expect(rowsOf(range, 'quantity', 'onset-age')).toEqual([
      { value: null, low: 40, high: 45, system: UCUM, unitCode: 'a', unit: 'yr', canonicalValue: 40 * 31557600, canonicalUnit: 's' },
    ]);
    const dt = extract({ resourceType: 'Condition', onsetDateTime: '2020' });
    expect(rowsOf(dt, 'quantity', 'onset-age')).toEqual([]);
  });

  test('Range open at one end', () => {
    const vs = extract({
      resourceType: 'ValueSet',
      useContext: [{ code: { code: 'age' }, valueRange: { low: { value: 18, system: UCUM, code: 'a' } } }],
    });
    expect(rowsOf(vs, 'quantity', 'context-quantity').map((r) => [r.value, r.low, r.high])).toEqual([[null, 18, Infinity]]);
  });

  test('Money: system ISO 4217, code = currency', () => {
    const inv = extract({ resourceType: 'Invoice', status: 'issued', totalGross: { value: 12.5, currency: 'EUR' } });
    expect(rowsOf(inv, 'quantity', 'totalgross')).toEqual([
      { value: 12.5, low: 12.5, high: 12.5, system: 'urn:iso:std:iso:4217', unitCode: 'EUR', unit: null, canonicalValue: null, canonicalUnit: null },
    ]);
  });

  test('SampledData is not indexed', () => {
    const obs = extract({
      resourceType: 'Observation',
      valueSampledData: { origin: { value: 2, system: UCUM, code: 'mV' }, period: 10, dimensions: 1, data: '1 2 3' },
    });
    expect(rowsOf(obs, 'quantity', 'value-quantity')).toEqual([]);
  });
});

describe('number parameters', () => {
  test('decimal and Range (RiskAssessment probability)', () => {
    const ra = extract({
      resourceType: 'RiskAssessment',
      status: 'final',
      subject: { reference: 'Patient/1' },
      prediction: [{ probabilityDecimal: 0.02 }, { probabilityRange: { low: { value: 0.1 }, high: { value: 0.2 } } }, { probabilityRange: { high: { value: 0.5 } } }],
    });
    expect(rowsOf(ra, 'number', 'probability')).toEqual([
      { value: 0.02, low: 0.02, high: 0.02 },
      { value: null, low: 0.1, high: 0.2 },
      { value: null, low: -Infinity, high: 0.5 },
    ]);
  });

  test('integers (MolecularSequence window and variant coordinates)', () => {
    const ms = extract({
      resourceType: 'MolecularSequence',
      coordinateSystem: 0,
      referenceSeq: { windowStart: 22125500, windowEnd: 22125510 },
      variant: [{ start: 22125503, end: 22125504 }],
    });
    expect(rowsOf(ms, 'number', 'window-start')).toEqual([{ value: 22125500, low: 22125500, high: 22125500 }]);
    expect(rowsOf(ms, 'number', 'variant-end')).toEqual([{ value: 22125504, low: 22125504, high: 22125504 }]);
  });
});
