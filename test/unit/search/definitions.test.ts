import { baseSearchParameters, createRegistry, type SearchParameterResource } from '../../../src/search/definitions';
import { extract, rowsOf } from './helpers';

describe('the base R4 set', () => {
  const registry = createRegistry();

  test('loads search-parameters.json only, without Medplum parameters', () => {
    const base = baseSearchParameters();
    expect(base.length).toBeGreaterThan(1300);
    expect(base.some((sp) => sp.url.startsWith('https://medplum.com'))).toBe(false);
    // Medplum's own (search-parameters-medplum.json) are not there, e.g. Project.name.
    expect(registry.get('Project', 'name')).toBeUndefined();
    expect(registry.get('Patient', 'name')?.url).toBe('http://hl7.org/fhir/SearchParameter/Patient-name');
    expect(registry.size).toBe(base.length);
  });

  test('keeps only the fields search needs', () => {
    const sp = baseSearchParameters().find((s) => s.url === 'http://hl7.org/fhir/SearchParameter/Patient-name')!;
    expect(Object.keys(sp).sort()).toEqual(['base', 'code', 'expression', 'status', 'type', 'url', 'version']);
  });

  test('common parameters apply to every type; DomainResource ones not to Bundle', () => {
    for (const type of ['Patient', 'Observation', 'Bundle', 'Binary']) {
      for (const code of ['_id', '_lastUpdated', '_tag', '_profile', '_security', '_source']) {
        expect(registry.get(type, code)?.base).toBe('Resource');
      }
    }
    expect(registry.get('Patient', '_text')?.indexed).toBe(false);
    expect(registry.get('Bundle', '_text')).toBeUndefined();
    expect(registry.get('Patient', '_lastUpdated')).toMatchObject({ type: 'date', expression: 'Resource.meta.lastUpdated' });
  });

  test('a multi-base parameter is narrowed to each type', () => {
    const code = registry.get('Condition', 'code')!;
    expect(code.url).toBe('http://hl7.org/fhir/SearchParameter/clinical-code');
    expect(code.expression).toBe('Condition.code');
    expect(registry.get('MedicationRequest', 'code')!.expression).toBe('(MedicationRequest.medication as CodeableConcept)');
    expect(registry.get('MedicationRequest', 'code')!.branches).toEqual([
      { expression: '(MedicationRequest.medication.ofType(CodeableConcept))', requires: 'medication' },
    ]);
    expect(registry.get('AllergyIntolerance', 'code')!.branches.map((b) => b.expression)).toEqual([
      'AllergyIntolerance.code',
      'AllergyIntolerance.reaction.substance',
    ]);
    expect(registry.get('Observation', 'patient')!.branches).toEqual([
      { expression: 'Observation.subject', targetType: 'Patient', requires: 'subject' },
    ]);
  });

  test('special parameters and those without expression are listed but not indexed', () => {
    const skipped = registry.unindexed('Location').map((d) => d.code).sort();
    expect(skipped).toEqual(['_content', '_query', '_text', 'near']);
    expect(registry.get('Location', 'near')).toMatchObject({ type: 'special', indexed: false, branches: [] });
  });

  test('forType lists each code once, with its type', () => {
    const codes = registry.forType('Observation').map((d) => d.code);
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes).toEqual(expect.arrayContaining(['code', 'subject', 'patient', 'value-quantity', 'code-value-quantity', '_id']));
    expect(registry.get('Observation', 'code-value-quantity')!.components!.map((c) => c.branches[0].expression)).toEqual([
      'code',
      'value.ofType(Quantity)',
    ]);
  });

  test('every base expression compiles for every type', () => {
    const failures: string[] = [];
    for (const type of registry.baseTypes()) {
      for (const f of registry.precompile(type)) {
        failures.push(`${type}.${f.def.code}: ${f.expression}: ${f.error.message}`);
      }
    }
    expect(failures).toEqual([]);
  });

  test('no base parameter throws on a minimal resource of any type', () => {
    // extract() fails the test on any expression error.
    for (const type of registry.baseTypes()) {
      if (type === 'Resource' || type === 'DomainResource') {
        continue;
      }
      const rows = extract({ resourceType: type, id: 'x' }, {}, registry);
      // Only _id, and Patient.deceased, whose expression is false rather than empty.
      const expected = [{ code: '_id', system: null, value: 'x', text: null, typeSystem: null, typeCode: null }];
      if (type === 'Patient') {
        expected.push({ code: 'deceased', system: null, value: 'false', text: null, typeSystem: null, typeCode: null });
      }
      expect(rows.token).toEqual(expected);
      expect(Object.values(rows).flat().length).toBe(expected.length);
    }
  });
});

describe('parameters added at run time', () => {
  const birthsex: SearchParameterResource = {
    resourceType: 'SearchParameter',
    url: 'http://hl7.org/fhir/us/core/SearchParameter/us-core-birthsex',
    status: 'active',
    code: 'birthsex',
    base: ['Patient'],
    type: 'token',
    expression: "Patient.extension('http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex').value",
  };

  test('add, get, forType, and extraction with them', () => {
    const registry = createRegistry();
    const [def] = registry.add(birthsex);
    expect(def).toMatchObject({ code: 'birthsex', base: 'Patient', source: 'added', indexed: true });
    expect(registry.get('Patient', 'birthsex')).toBe(def);
    expect(registry.forType('Patient')).toContain(def);
    expect(registry.get('Observation', 'birthsex')).toBeUndefined();
    const rows = extract(
      {
        resourceType: 'Patient',
        extension: [{ url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex', valueCode: 'F' }],
      },
      {},
      registry,
    );
    expect(rowsOf(rows, 'token', 'birthsex')).toEqual([{ system: null, value: 'F', text: null, typeSystem: null, typeCode: null }]);
  });

  test('an added parameter with a base code overrides it, and removing it restores the base one', () => {
    const registry = createRegistry();
    registry.add({ url: 'http://example.org/SearchParameter/name', code: 'name', base: ['Patient'], type: 'string', expression: 'Patient.name.family' });
    const p = { resourceType: 'Patient', name: [{ family: 'Smith', given: ['Ann'] }] };
    expect(rowsOf(extract(p, {}, registry), 'string', 'name').map((r) => r.value)).toEqual(['Smith']);
    expect(registry.remove('http://example.org/SearchParameter/name')).toBe(true);
    expect(registry.get('Patient', 'name')!.source).toBe('base');
    expect(rowsOf(extract(p, {}, registry), 'string', 'name').map((r) => r.value)).toEqual(['Smith', 'Ann']);
  });

  test('re-adding the same url replaces the earlier version', () => {
    const registry = createRegistry();
    registry.add({ ...birthsex, expression: 'Patient.gender' });
    registry.add(birthsex);
    expect(registry.get('Patient', 'birthsex')!.expression).toBe(birthsex.expression);
    expect(registry.size).toBe(baseSearchParameters().length + 1);
  });

  test('a multi-base added parameter applies to each base, narrowed', () => {
    const registry = createRegistry();
    registry.add({
      url: 'http://example.org/SearchParameter/note-text',
      code: 'note-text',
      base: ['Observation', 'Condition'],
      type: 'string',
      expression: 'Observation.note.text | Condition.note.text',
    });
    expect(registry.get('Observation', 'note-text')!.expression).toBe('Observation.note.text');
    expect(registry.get('Condition', 'note-text')!.expression).toBe('Condition.note.text');
  });

  test.each([
    [{ code: 'x', base: ['Patient'], type: 'token', expression: 'Patient.id' }, /url is required/],
    [{ url: 'u', code: 'bad code', base: ['Patient'], type: 'token' }, /not a valid search parameter name/],
    [{ url: 'u', code: 'x', base: [], type: 'token' }, /base must list resource types/],
    [{ url: 'u', code: 'x', base: ['Patient'], type: 'text' }, /not a search parameter type/],
    [{ url: 'u', code: 'x', base: ['Patient'], type: 'composite', expression: 'Patient' }, /needs components/],
    [{ url: 'u', code: 'x', base: ['Patient'], type: 'token', expression: 'Patient.name.(' }, /is not valid/],
    [{ url: 'u', code: 'x', base: ['Patient'], type: 'token', expression: 'Patient.name.noSuchFunction()' }, /is not valid/],
  ])('rejects a malformed SearchParameter %#', (sp, message) => {
    const registry = createRegistry();
    expect(() => registry.add(sp as unknown as SearchParameterResource)).toThrow(message);
    expect(registry.size).toBe(baseSearchParameters().length);
  });

  test('addAll reads a Bundle (profiles/ files), reports bad ones, and can keep only active ones', () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        { resource: birthsex },
        { resource: { ...birthsex, url: 'http://example.org/SearchParameter/draft', code: 'draft-one', status: 'draft' } },
        { resource: { resourceType: 'SearchParameter', url: 'http://example.org/SearchParameter/broken', code: 'broken', base: ['Patient'], type: 'nope' } },
        { resource: { resourceType: 'ValueSet', url: 'http://example.org/vs' } },
      ],
    };
    const all = createRegistry().addAll(bundle, { origin: 'profiles/us-core.json' });
    expect(all.added.map((d) => d.code)).toEqual(['birthsex', 'draft-one']);
    expect(all.problems).toEqual([expect.stringMatching(/^profiles\/us-core\.json: SearchParameter http:\/\/example.org\/SearchParameter\/broken: type 'nope'/)]);
    const activeOnly = createRegistry();
    expect(activeOnly.addAll([bundle], { activeOnly: true }).added.map((d) => d.code)).toEqual(['birthsex']);
    expect(activeOnly.get('Patient', 'draft-one')).toBeUndefined();
  });

  test('registries are independent', () => {
    const a = createRegistry();
    const b = createRegistry();
    a.add(birthsex);
    expect(a.get('Patient', 'birthsex')).toBeDefined();
    expect(b.get('Patient', 'birthsex')).toBeUndefined();
  });
});
