import { COMMON_IMPORT_TYPES } from '../../src/import/importer';
import { isResourceType, pointerToFhirPath, validateStructure, validatorCompiled, warmUpValidators } from '../../src/validation/schema';

describe('R4 JSON schema validation', () => {
  test('knows the R4 resource types', () => {
    expect(isResourceType('Patient')).toBe(true);
    expect(isResourceType('CarePlan')).toBe(true);
    expect(isResourceType('Foo')).toBe(false);
  });

  test('a valid resource has no issues', () => {
    expect(validateStructure({ resourceType: 'Patient', name: [{ family: 'X', given: ['Y'] }], birthDate: '1950-01-02' })).toEqual([]);
  });

  test('wrong types, bad primitives and unknown elements are named by FHIRPath', () => {
    const issues = validateStructure({ resourceType: 'Patient', birthDate: '1950-13-45', name: [{ given: [12] }], foo: 1 });
    const where = issues.map((i) => i.expression?.[0]).sort();
    expect(where).toEqual(['Patient.birthDate', 'Patient.foo', 'Patient.name[0].given[0]']);
    expect(issues.find((i) => i.expression?.[0] === 'Patient.foo')?.diagnostics).toContain("Unknown element 'foo'");
  });

  test('nested resources are validated against their own type', () => {
    const issues = validateStructure({
      resourceType: 'Patient',
      contained: [{ resourceType: 'Organization', id: 'o1', active: 'yes' }],
    });
    expect(issues).toHaveLength(1);
    expect(issues[0].expression).toEqual(['Patient.contained[0].active']);
  });

  test('required elements and code values are checked', () => {
    const issues = validateStructure({ resourceType: 'Observation', status: 'done' });
    const texts = issues.map((i) => i.diagnostics).join(' | ');
    expect(texts).toContain("Missing required element 'code'");
    expect(texts).toContain('Observation.status must be one of');
  });

  test('JSON pointers become FHIRPath', () => {
    expect(pointerToFhirPath('Patient', '/name/0/given/1')).toBe('Patient.name[0].given[1]');
    expect(pointerToFhirPath('Bundle', '')).toBe('Bundle');
  });
});

test('R4 4.0.1 is an accepted FHIR version (the published schema stops at 4.0.0)', () => {
  const issues = validateStructure({ resourceType: 'CapabilityStatement', status: 'active', date: '2026-01-01', kind: 'instance', fhirVersion: '4.0.1', format: ['json'] });
  expect(issues).toEqual([]);
  const wrong = validateStructure({ resourceType: 'CapabilityStatement', status: 'active', date: '2026-01-01', kind: 'instance', fhirVersion: '9.9.9', format: ['json'] });
  expect(wrong[0].expression).toEqual(['CapabilityStatement.fhirVersion']);
});

describe('fixes to the published R4 JSON schema (found loading the official R4 examples)', () => {
  test('min >= 1 rules follow the element path, not a guessed definition name', () => {
    // CodeSystem.property needs no value; CodeSystem.concept.property needs value[x].
    const base = { resourceType: 'CodeSystem', status: 'active', content: 'complete' };
    expect(validateStructure({ ...base, property: [{ code: 'p', type: 'string' }] })).toEqual([]);
    const missing = validateStructure({ ...base, property: [{ code: 'p', type: 'string' }], concept: [{ code: 'c', property: [{ code: 'p' }] }] });
    expect(missing.map((i) => i.expression?.[0])).toEqual(['CodeSystem.concept[0].property[0].value[x]']);
  });

  test('every primitive may carry extensions in its _x sibling, canonical ones too', () => {
    const sd = {
      resourceType: 'StructureDefinition',
      url: 'http://example.org/sd',
      name: 'X',
      status: 'draft',
      kind: 'resource',
      abstract: false,
      type: 'Patient',
      baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient',
      _baseDefinition: { extension: [{ url: 'http://example.org/e', valueString: 'x' }] },
    };
    expect(validateStructure(sd)).toEqual([]);
  });

  test('ImplementationGuide.fhirVersion (a list) accepts 4.0.1', () => {
    const ig = { resourceType: 'ImplementationGuide', url: 'http://example.org/ig', name: 'X', status: 'draft', packageId: 'x', fhirVersion: ['4.0.1'] };
    expect(validateStructure(ig)).toEqual([]);
  });

  test('strings may contain Unicode spaces such as the no-break space, but not be empty', () => {
    expect(validateStructure({ resourceType: 'Patient', name: [{ family: 'van\u00a0Dijk' }] })).toEqual([]);
    expect(validateStructure({ resourceType: 'Patient', name: [{ family: '' }] })[0].expression).toEqual(['Patient.name[0].family']);
  });
});

describe('warming validators up ahead of use (continuum import, while the store starts)', () => {
  test('compiles each known type, one per turn of the event loop, and skips unknown names', async () => {
    const types = ['Goal', 'NotAType', 'Flag', 'Basic'];
    expect(types.filter(validatorCompiled)).toEqual([]);
    const seen: string[][] = [];
    // A callback queued for the next turn runs between two compiles, not after all of them.
    const probe = (): void => {
      seen.push(types.filter(validatorCompiled));
      if (seen.length < 3) {
        setImmediate(probe);
      }
    };
    setImmediate(probe);
    await warmUpValidators(types);
    expect(seen[0]).toEqual(['Goal']);
    expect(types.filter(validatorCompiled)).toEqual(['Goal', 'Flag', 'Basic']);
    // The warmed validator is the one used.
    const issues = validateStructure({ resourceType: 'Flag', status: 'nope', code: { text: 'x' }, subject: { reference: 'Patient/p' } });
    expect(issues.map((i) => i.expression?.[0])).toEqual(['Flag.status']);
  });

  test("the import's list names only R4 resource types (warmUpValidators would skip a misspelt one)", () => {
    expect(COMMON_IMPORT_TYPES.filter((t) => !isResourceType(t))).toEqual([]);
    expect(new Set(COMMON_IMPORT_TYPES).size).toBe(COMMON_IMPORT_TYPES.length);
  });
});
