import { createRegistry, type SearchParamDef } from '../../../src/search/definitions';
import { extractIndexValues } from '../../../src/search/extract';
import { hasElement, resourceHas } from '../../../src/search/extract/context';
import { evaluateTyped } from '../../../src/search/fhirpath';
import { bloodPressure, glucose, patient } from './fixtures';
import { extract, rowsOf } from './helpers';

describe('uri parameters', () => {
  test('_profile (canonical, version split off) and _source (uri)', () => {
    const rows = extract(bloodPressure);
    expect(rowsOf(rows, 'uri', '_profile')).toEqual([{ value: 'http://hl7.org/fhir/StructureDefinition/vitalsigns', version: '4.0.1' }]);
    expect(rowsOf(rows, 'uri', '_source')).toEqual([{ value: 'http://example.org/device/bp-cuff-17', version: null }]);
  });

  test('url of a canonical resource, and url-typed elements', () => {
    const vs = extract({ resourceType: 'ValueSet', status: 'active', url: 'http://example.org/fhir/ValueSet/ccm-conditions', version: '1.2' });
    expect(rowsOf(vs, 'uri', 'url')).toEqual([{ value: 'http://example.org/fhir/ValueSet/ccm-conditions', version: null }]);
    expect(rowsOf(vs, 'token', 'version').map((r) => r.value)).toEqual(['1.2']);
    const mh = extract({ resourceType: 'MessageHeader', eventCoding: { code: 'x' }, source: { endpoint: 'http://a' }, destination: [{ endpoint: 'http://b' }] });
    expect(rowsOf(mh, 'uri', 'source-uri')).toEqual([{ value: 'http://a', version: null }]);
    expect(rowsOf(mh, 'uri', 'destination-uri')).toEqual([{ value: 'http://b', version: null }]);
  });
});

describe('extractIndexValues', () => {
  test('returns every type of row, each tagged with its parameter code (unions of other parameters have none: unions.ts)', () => {
    const rows = extract(bloodPressure);
    expect(Object.keys(rows).sort()).toEqual(['composite', 'date', 'number', 'quantity', 'reference', 'string', 'token', 'uri']);
    const codes = new Set(Object.values(rows).flatMap((list: { code: string }[]) => list.map((r) => r.code)));
    expect([...codes].sort()).toEqual(
      [
        '_id',
        '_lastUpdated',
        '_profile',
        '_security',
        '_source',
        '_tag',
        'based-on',
        'category',
        'code',
        'component-code',
        'component-code-value-quantity',
        'component-value-quantity',
        'date',
        'encounter',
        'identifier',
        'method',
        'patient',
        'performer',
        'status',
        'subject',
      ].sort(),
    );
  });

  test('the resource is not modified', () => {
    const before = JSON.stringify(patient);
    extract(patient);
    expect(JSON.stringify(patient)).toBe(before);
  });

  test('a resource type without parameters of its own gets the common ones', () => {
    const rows = extract({ resourceType: 'Parameters', id: 'p1', meta: { lastUpdated: '2020-01-01T00:00:00Z' } });
    expect(rows.token).toEqual([{ code: '_id', system: null, value: 'p1', text: null, typeSystem: null, typeCode: null }]);
    expect(rows.date).toEqual([{ code: '_lastUpdated', start: '2020-01-01T00:00:00.000Z', end: '2020-01-01T00:00:01.000Z' }]);
  });

  test('extension(url), where() and primitive extensions in added parameters', () => {
    const registry = createRegistry();
    registry.add({
      url: 'http://example.org/SearchParameter/race',
      code: 'race',
      base: ['Patient'],
      type: 'token',
      expression: "Patient.extension.where(url = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race').extension.where(url = 'ombCategory').value",
    });
    registry.add({
      url: 'http://example.org/SearchParameter/birth-time',
      code: 'birth-time',
      base: ['Patient'],
      type: 'date',
      expression: "Patient.birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime').value",
    });
    registry.add({
      url: 'http://example.org/SearchParameter/care-team-size',
      code: 'member-count',
      base: ['CareTeam'],
      type: 'number',
      expression: 'CareTeam.participant.count()',
    });
    const p = {
      ...patient,
      extension: [
        {
          url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race',
          extension: [
            { url: 'ombCategory', valueCoding: { system: 'urn:oid:2.16.840.1.113883.6.238', code: '2106-3', display: 'White' } },
            { url: 'text', valueString: 'White' },
          ],
        },
      ],
    };
    const rows = extract(p, {}, registry);
    expect(rowsOf(rows, 'token', 'race')).toEqual([
      { system: 'urn:oid:2.16.840.1.113883.6.238', value: '2106-3', text: 'white', typeSystem: null, typeCode: null },
    ]);
    expect(rowsOf(rows, 'date', 'birth-time')).toEqual([{ start: '1974-12-25T19:35:45.000Z', end: '1974-12-25T19:35:46.000Z' }]);
    const team = extract({ resourceType: 'CareTeam', participant: [{ role: [{ text: 'a' }] }, { role: [{ text: 'b' }] }] }, {}, registry);
    expect(rowsOf(team, 'number', 'member-count')).toEqual([{ value: 2, low: 2, high: 2 }]);
  });

  test('a parameter that throws on this resource is reported and skipped; the others still index', () => {
    const registry = createRegistry();
    registry.add({ url: 'http://example.org/SearchParameter/one-name', code: 'one-name', base: ['Patient'], type: 'string', expression: 'Patient.name.single().family' });
    const errors: [SearchParamDef, unknown][] = [];
    const rows = extractIndexValues(patient, registry, { onError: (def, err) => errors.push([def, err]) });
    expect(errors).toHaveLength(1);
    expect(errors[0][0].code).toBe('one-name');
    expect(String(errors[0][1])).toMatch(/single/i);
    expect(rowsOf(rows, 'string', 'family').length).toBeGreaterThan(0);
    // Without onError nothing is thrown either.
    expect(() => extractIndexValues(patient, registry)).not.toThrow();
    // On a resource where it holds, it indexes.
    const solo = { resourceType: 'Patient', name: [{ family: 'Solo' }] };
    const single = extractIndexValues(solo, registry);
    expect(rowsOf(single, 'string', 'one-name')).toEqual([{ value: 'Solo', normalized: 'solo' }]);
  });

  test('resolve() beyond the trailing where(resolve() is X) form never fetches: contained only', () => {
    const registry = createRegistry();
    registry.add({
      url: 'http://example.org/SearchParameter/performer-name',
      code: 'performer-name',
      base: ['Observation'],
      type: 'string',
      expression: 'Observation.performer.resolve().ofType(Practitioner).name',
    });
    const obs = {
      resourceType: 'Observation',
      contained: [{ resourceType: 'Practitioner', id: 'pr', name: [{ family: 'Núñez' }] }],
      performer: [{ reference: '#pr' }, { reference: 'Practitioner/elsewhere' }],
    };
    expect(rowsOf(extract(obs, {}, registry), 'string', 'performer-name')).toEqual([{ value: 'Núñez', normalized: 'nunez' }]);
  });

  test('duplicate values within a parameter are indexed once', () => {
    const rows = extract({
      resourceType: 'Patient',
      name: [{ family: 'Smith' }, { family: 'Smith', given: ['Smith'] }],
      identifier: [
        { system: 'urn:a', value: '1' },
        { system: 'urn:a', value: '1' },
      ],
    });
    expect(rowsOf(rows, 'string', 'name')).toEqual([{ value: 'Smith', normalized: 'smith' }]);
    expect(rowsOf(rows, 'token', 'identifier')).toHaveLength(1);
  });
});

describe('skipping branches whose first element is absent', () => {
  test('never changes a result: every skipped branch evaluates to nothing', () => {
    const registry = createRegistry();
    const samples: { resourceType: string; [k: string]: unknown }[] = [bloodPressure, glucose, patient];
    for (const type of registry.baseTypes()) {
      samples.push({ resourceType: type, id: 'x', meta: { lastUpdated: '2020-01-01T00:00:00Z' } });
    }
    let checked = 0;
    for (const resource of samples) {
      for (const def of registry.forType(resource.resourceType)) {
        for (const branch of def.branches) {
          if (branch.requires !== undefined && !hasElement(resource, branch.requires)) {
            expect([def.code, evaluateTyped(branch.expression, resource, resource)]).toEqual([def.code, []]);
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });
});

describe('resourceHas (the per-extraction set of element names)', () => {
  test('answers as hasElement does, for present, absent, extension-only and choice elements', () => {
    const registry = createRegistry();
    const resources: { resourceType: string; [k: string]: unknown }[] = [
      bloodPressure,
      glucose,
      patient,
      { resourceType: 'Patient', birthDate: '1970', _gender: { extension: [] }, deceasedBoolean: false, multipleBirthInteger: 2, name: undefined },
      { resourceType: 'Observation', valueQuantity: { value: 1 }, _effectiveDateTime: { id: 'e' }, effectivePeriod: undefined },
    ];
    const elements = new Set<string>(['birth', 'birthDate', 'gender', 'deceased', 'multiple', 'multipleBirth', 'name', 'value', 'valueQuantity', 'effective', 'effectiveDate', 'effectivePeriod', 'effectiveDateTime', 'status', 'x', 'resourceType']);
    for (const type of registry.baseTypes()) {
      for (const def of registry.forType(type)) {
        for (const b of def.branches) {
          if (b.requires !== undefined) {
            elements.add(b.requires);
          }
        }
      }
    }
    let trues = 0;
    for (const resource of resources) {
      const ctx = { resource };
      for (const element of elements) {
        const expected = hasElement(resource, element);
        expect([element, resourceHas(ctx, element)]).toEqual([element, expected]);
        trues += expected ? 1 : 0;
      }
    }
    expect(trues).toBeGreaterThan(20);
  });
});
