import type { CompositeComponent, IndexRows } from '../../../src/search/extract';
import { componentTypes } from '../../../src/search/extract';
import { createRegistry, type SearchParameterResource } from '../../../src/search/definitions';
import { bloodPressure, glucose } from './fixtures';
import { extract, rowsOf } from './helpers';

/** A compact view of a tuple: `system|code` for tokens, `value unit` for quantities, ... */
function show(c: CompositeComponent): string {
  switch (c.type) {
    case 'token':
      return `${c.system ?? ''}|${c.value ?? ''}`;
    case 'quantity':
      return c.value === null ? `[${c.low},${c.high}] ${c.unitCode}` : `${c.value} ${c.unitCode}`;
    case 'date':
      return `${c.start}..${c.end}`;
    case 'string':
      return c.normalized;
    case 'number':
      return String(c.value);
    case 'reference':
      return `${c.targetType}/${c.targetId ?? c.url}`;
    case 'uri':
      return c.value;
  }
}

function tuples(rows: IndexRows, code: string): string[] {
  return rowsOf(rows, 'composite', code).map((r) => r.components.map(show).join(' $ '));
}

describe('composite parameters', () => {
  const bp = extract(bloodPressure);

  test('component-code-value-quantity pairs code and value of the SAME component', () => {
    expect(tuples(bp, 'component-code-value-quantity')).toEqual([
      'http://loinc.org|8480-6 $ 107 mm[Hg]',
      'http://snomed.info/sct|271649006 $ 107 mm[Hg]',
      'http://loinc.org|8462-4 $ 60 mm[Hg]',
    ]);
    // The cross pairs that a per-parameter index would allow are not there.
    expect(tuples(bp, 'component-code-value-quantity')).not.toContain('http://loinc.org|8480-6 $ 60 mm[Hg]');
    expect(tuples(bp, 'component-code-value-quantity')).not.toContain('http://loinc.org|8462-4 $ 107 mm[Hg]');
  });

  test('combo-code-value-quantity has no rows of its own: its tuples are those of code-value-quantity and component-code-value-quantity', () => {
    // The panel code has no value, so no resource-level tuple.
    expect(tuples(bp, 'code-value-quantity')).toEqual([]);
    expect(tuples(bp, 'combo-code-value-quantity')).toEqual([]);
    expect([...tuples(bp, 'code-value-quantity'), ...tuples(bp, 'component-code-value-quantity')]).toEqual([
      'http://loinc.org|8480-6 $ 107 mm[Hg]',
      'http://snomed.info/sct|271649006 $ 107 mm[Hg]',
      'http://loinc.org|8462-4 $ 60 mm[Hg]',
    ]);
  });

  test('code-value-quantity on a resource-level value', () => {
    const rows = extract(glucose);
    expect(tuples(rows, 'code-value-quantity')).toEqual(['http://loinc.org|15074-8 $ 6.3 mmol/L']);
    const [row] = rowsOf(rows, 'composite', 'code-value-quantity');
    expect(row.components[1]).toMatchObject({ type: 'quantity', value: 6.3, system: 'http://unitsofmeasure.org', unitCode: 'mmol/L' });
  });

  test('code-value-concept, code-value-date and code-value-string follow the value[x] type', () => {
    const base = { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '883-9' }] } };
    const concept = extract({ ...base, valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '112144000' }] } });
    expect(tuples(concept, 'code-value-concept')).toEqual(['http://loinc.org|883-9 $ http://snomed.info/sct|112144000']);
    expect(tuples(concept, 'code-value-quantity')).toEqual([]);
    const date = extract({ ...base, valueDateTime: '2021-06' });
    expect(tuples(date, 'code-value-date')).toEqual(['http://loinc.org|883-9 $ 2021-06-01T00:00:00.000Z..2021-07-01T00:00:00.000Z']);
    const str = extract({ ...base, valueString: 'Positive — Ñ' });
    expect(tuples(str, 'code-value-string')).toEqual(['http://loinc.org|883-9 $ positive — n']);
  });

  test('useContext: context-type-quantity (Range) and context-type-value per useContext', () => {
    const vs = extract({
      resourceType: 'ValueSet',
      status: 'active',
      useContext: [
        { code: { system: 'http://terminology.hl7.org/CodeSystem/usage-context-type', code: 'age' }, valueRange: { low: { value: 18, code: 'a' }, high: { value: 65, code: 'a' } } },
        { code: { system: 'http://terminology.hl7.org/CodeSystem/usage-context-type', code: 'focus' }, valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '44054006' }] } },
      ],
    });
    expect(tuples(vs, 'context-type-quantity')).toEqual(['http://terminology.hl7.org/CodeSystem/usage-context-type|age $ [18,65] a']);
    expect(tuples(vs, 'context-type-value')).toEqual(['http://terminology.hl7.org/CodeSystem/usage-context-type|focus $ http://snomed.info/sct|44054006']);
  });

  test('three components, one from %resource (MolecularSequence chromosome-variant-coordinate)', () => {
    const ms = extract({
      resourceType: 'MolecularSequence',
      coordinateSystem: 0,
      referenceSeq: { chromosome: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/chromosome-human', code: '1' }] } },
      variant: [
        { start: 100, end: 101 },
        { start: 200, end: 205 },
      ],
    });
    expect(tuples(ms, 'chromosome-variant-coordinate')).toEqual([
      'http://terminology.hl7.org/CodeSystem/chromosome-human|1 $ 100 $ 101',
      'http://terminology.hl7.org/CodeSystem/chromosome-human|1 $ 200 $ 205',
    ]);
  });

  test('token + reference (DocumentReference relationship)', () => {
    const dr = extract({
      resourceType: 'DocumentReference',
      status: 'current',
      content: [{ attachment: { url: 'http://x' } }],
      relatesTo: [{ code: 'replaces', target: { reference: 'DocumentReference/old' } }],
    });
    expect(tuples(dr, 'relationship')).toEqual(['|replaces $ DocumentReference/old']);
  });

  test('a code given as text alone makes no tuple (composite tokens match on codes only)', () => {
    const r = extract({
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8302-2', display: 'Body height' }], text: 'Height' },
      valueQuantity: { value: 180, unit: 'cm', system: 'http://unitsofmeasure.org', code: 'cm' },
    });
    expect(tuples(r, 'code-value-quantity')).toEqual(['http://loinc.org|8302-2 $ 180 cm']);
    const textOnly = extract({ resourceType: 'Observation', status: 'final', code: { text: 'Height' }, valueQuantity: { value: 180, code: 'cm' } });
    expect(tuples(textOnly, 'code-value-quantity')).toEqual([]);
    // The token parameter still has the text (for `:text`).
    expect(rowsOf(textOnly, 'token', 'code').map((x) => x.text)).toEqual(['height']);
  });

  test('a repetition missing a component gives no tuple', () => {
    const obs = extract({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      component: [
        { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] } },
        { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 80, code: 'mm[Hg]' } },
      ],
    });
    expect(tuples(obs, 'component-code-value-quantity')).toEqual(['http://loinc.org|8462-4 $ 80 mm[Hg]']);
  });
});

test('component types follow a component SearchParameter replaced in the registry (not a stale cache)', () => {
  const registry = createRegistry();
  const part: SearchParameterResource = { url: 'http://example.org/SearchParameter/obs-part', code: 'obs-part', base: ['Observation'], type: 'token', expression: 'Observation.code' };
  registry.add(part);
  const [def] = registry.add({
    url: 'http://example.org/SearchParameter/obs-part-value',
    code: 'obs-part-value',
    base: ['Observation'],
    type: 'composite',
    expression: 'Observation',
    component: [
      { definition: part.url, expression: 'code' },
      { definition: 'http://hl7.org/fhir/SearchParameter/Observation-value-quantity', expression: 'value.ofType(Quantity)' },
    ],
  });
  expect(componentTypes(def, registry)).toEqual(['token', 'quantity']);
  registry.add({ ...part, type: 'string', expression: 'Observation.code.text' });
  expect(componentTypes(def, registry)).toEqual(['string', 'quantity']);
});
