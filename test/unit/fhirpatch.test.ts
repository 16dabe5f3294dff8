import type { Observation, Parameters, ParametersParameter, Patient, Resource } from '@medplum/fhirtypes';
import { FhirError } from '../../src/errors';
import { applyFhirPatch, parseFhirPatch } from '../../src/fhir/fhirpatch';

/** One `operation` parameter from its parts (value parts given as they are). */
function op(type: string, path: string, more: ParametersParameter[] = []): ParametersParameter {
  return { name: 'operation', part: [{ name: 'type', valueCode: type }, { name: 'path', valueString: path }, ...more] };
}

function patchOf(...operations: ParametersParameter[]): Parameters {
  return { resourceType: 'Parameters', parameter: operations };
}

function apply<T extends Resource>(resource: T, ...operations: ParametersParameter[]): T {
  return applyFhirPatch(resource, parseFhirPatch(patchOf(...operations))) as T;
}

/** The 400's message, or a failure if the call did not throw one. */
function problem(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FhirError);
    expect((err as FhirError).category).toBe('invalid');
    return (err as FhirError).message;
  }
  throw new Error('expected a 400');
}

const patient = (): Patient => ({
  resourceType: 'Patient',
  id: 'p1',
  identifier: [
    { system: 'urn:mrn', value: '1' },
    { system: 'urn:ssn', value: '2' },
  ],
  name: [{ family: 'Chalmers', given: ['Peter', 'James'] }],
  birthDate: '1974-12-25',
  deceasedBoolean: false,
} as Patient);

describe('FHIRPath Patch operations', () => {
  test('add: a repeating element is appended to, a single one set when absent', () => {
    const out = apply(
      patient(),
      op('add', 'Patient', [{ name: 'name', valueString: 'telecom' }, { name: 'value', valueContactPoint: { system: 'phone', value: '555' } }]),
      op('add', 'Patient.name[0]', [{ name: 'name', valueString: 'given' }, { name: 'value', valueString: 'Jim' }]),
      op('add', 'Patient', [{ name: 'name', valueString: 'gender' }, { name: 'value', valueCode: 'male' }]),
    );
    expect(out.telecom).toEqual([{ system: 'phone', value: '555' }]);
    expect(out.name?.[0].given).toEqual(['Peter', 'James', 'Jim']);
    expect(out.gender).toBe('male');
  });

  test('add: a choice element takes its key from the value type; a set single element needs replace', () => {
    const obs: Observation = { resourceType: 'Observation', status: 'final', code: { text: 'x' } };
    const out = apply(obs, op('add', 'Observation', [{ name: 'name', valueString: 'value' }, { name: 'value', valueQuantity: { value: 5, unit: 'mg' } }]));
    expect(out.valueQuantity).toEqual({ value: 5, unit: 'mg' });
    expect(problem(() => apply(patient(), op('add', 'Patient', [{ name: 'name', valueString: 'birthDate' }, { name: 'value', valueDate: '2000-01-01' }])))).toMatch(
      /already has a value; use replace/,
    );
    expect(problem(() => apply(patient(), op('add', 'Patient', [{ name: 'name', valueString: 'colour' }, { name: 'value', valueString: 'x' }])))).toMatch(
      /Patient has no element 'colour'/,
    );
  });

  test('add: a backbone element is built from parts, repeated names become a list', () => {
    const out = apply(
      patient(),
      op('add', 'Patient', [
        { name: 'name', valueString: 'contact' },
        {
          name: 'value',
          part: [
            { name: 'name', valueHumanName: { family: 'Kin' } },
            { name: 'telecom', valueContactPoint: { system: 'phone', value: '1' } },
            { name: 'telecom', valueContactPoint: { system: 'email', value: 'a@b' } },
          ],
        },
      ]),
    );
    expect(out.contact).toEqual([{ name: { family: 'Kin' }, telecom: [{ system: 'phone', value: '1' }, { system: 'email', value: 'a@b' }] }]);
  });

  test('insert and move keep a list in the order asked for', () => {
    const inserted = apply(patient(), op('insert', 'Patient.identifier', [{ name: 'value', valueIdentifier: { system: 'urn:x', value: '0' } }, { name: 'index', valueInteger: 0 }]));
    expect(inserted.identifier?.map((i) => i.value)).toEqual(['0', '1', '2']);
    const moved = apply(patient(), op('move', 'Patient.name[0].given', [{ name: 'source', valueInteger: 1 }, { name: 'destination', valueInteger: 0 }]));
    expect(moved.name?.[0].given).toEqual(['James', 'Peter']);
    expect(problem(() => apply(patient(), op('insert', 'Patient.identifier', [{ name: 'value', valueIdentifier: { value: 'x' } }, { name: 'index', valueInteger: 3 }])))).toMatch(
      /index 3 is past the end/,
    );
    expect(problem(() => apply(patient(), op('move', 'Patient.identifier', [{ name: 'source', valueInteger: 0 }, { name: 'destination', valueInteger: 2 }])))).toMatch(
      /must be within/,
    );
  });

  test('delete: one element found by any FHIRPath, a primitive by name, nothing when nothing matches', () => {
    const byWhere = apply(patient(), op('delete', "Patient.identifier.where(system = 'urn:ssn')"));
    expect(byWhere.identifier).toEqual([{ system: 'urn:mrn', value: '1' }]);
    const primitive = apply(patient(), op('delete', 'Patient.name[0].given[0]'), op('delete', 'Patient.birthDate'));
    expect(primitive.name?.[0].given).toEqual(['James']);
    expect(primitive.birthDate).toBeUndefined();
    const last = apply(patient(), op('delete', 'Patient.name'));
    expect('name' in last).toBe(false); // no empty list left behind
    expect(apply(patient(), op('delete', "Patient.identifier.where(system = 'none')"))).toEqual(patient());
    expect(problem(() => apply(patient(), op('delete', 'Patient.identifier')))).toMatch(/selects 2 elements; a delete removes one/);
  });

  test('delete of a primitive list element removes its extension sibling too', () => {
    const p = { ...patient(), name: [{ given: ['A', 'B'], _given: [{ extension: [{ url: 'urn:a', valueString: 'a' }] }, { extension: [{ url: 'urn:b', valueString: 'b' }] }] }] } as unknown as Patient;
    const out = apply(p, op('delete', 'Patient.name[0].given[0]')) as Patient & { name: { _given?: unknown[] }[] };
    expect(out.name[0].given).toEqual(['B']);
    expect(out.name[0]._given).toEqual([{ extension: [{ url: 'urn:b', valueString: 'b' }] }]);
  });

  test('replace: an object, a primitive, and a choice element changing type', () => {
    const out = apply(
      patient(),
      op('replace', "Patient.identifier.where(system = 'urn:mrn')", [{ name: 'value', valueIdentifier: { system: 'urn:mrn', value: '9' } }]),
      op('replace', 'Patient.birthDate', [{ name: 'value', valueDate: '1975-01-01' }]),
      op('replace', 'Patient.deceased', [{ name: 'value', valueDateTime: '2020-02-02' }]),
    );
    expect(out.identifier?.[0]).toEqual({ system: 'urn:mrn', value: '9' });
    expect(out.birthDate).toBe('1975-01-01');
    expect(out.deceasedDateTime).toBe('2020-02-02');
    expect('deceasedBoolean' in out).toBe(false);
    expect(problem(() => apply(patient(), op('replace', 'Patient.gender', [{ name: 'value', valueCode: 'male' }])))).toMatch(/exactly one element to replace; it selected 0/);
    expect(problem(() => apply(patient(), op('replace', 'Patient.deceased', [{ name: 'value', valueQuantity: { value: 1 } }])))).toMatch(/cannot be a Quantity/);
  });

  test('an index after a flattened list counts over all its values, as FHIRPath does', () => {
    const p: Patient = { resourceType: 'Patient', name: [{ given: ['A'] }, { given: ['B', 'C'] }] };
    expect(apply(p, op('delete', 'Patient.name.given[1]')).name).toEqual([{ given: ['A'] }, { given: ['C'] }]);
    expect(apply(p, op('replace', 'Patient.name.given[2]', [{ name: 'value', valueString: 'Z' }])).name).toEqual([{ given: ['A'] }, { given: ['B', 'Z'] }]);
  });

  test('choice elements are told from elements whose names only look like them', () => {
    const twin = apply({ resourceType: 'Patient', multipleBirthBoolean: true } as Patient, op('replace', 'Patient.multipleBirth', [{ name: 'value', valueInteger: 2 }]));
    expect(twin).toEqual({ resourceType: 'Patient', multipleBirthInteger: 2 });
    const product = { resourceType: 'BiologicallyDerivedProduct', productCategory: 'organ' } as Resource;
    expect(apply(product, op('replace', 'BiologicallyDerivedProduct.productCategory', [{ name: 'value', valueCode: 'cells' }]))).toEqual({
      resourceType: 'BiologicallyDerivedProduct',
      productCategory: 'cells',
    });
  });

  test('applying the same parsed operations twice gives the same result (a retry after a concurrent write)', () => {
    const ops = parseFhirPatch(
      patchOf(
        op('add', 'Patient', [{ name: 'name', valueString: 'telecom' }, { name: 'value', valueContactPoint: { system: 'phone' } }]),
        op('add', "Patient.telecom.where(system = 'phone')", [{ name: 'name', valueString: 'value' }, { name: 'value', valueString: '555' }]),
      ),
    );
    const first = applyFhirPatch({ resourceType: 'Patient', id: 'p' }, ops);
    const second = applyFhirPatch({ resourceType: 'Patient', id: 'p' }, ops);
    expect(first).toEqual({ resourceType: 'Patient', id: 'p', telecom: [{ system: 'phone', value: '555' }] });
    expect(second).toEqual(first);
  });

  test('replace drops the old value\'s extensions; delete leaves no empty element; add keeps _x lists aligned', () => {
    const absent = [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }];
    const p = { resourceType: 'Patient', birthDate: '1900-01-01', _birthDate: { extension: absent }, maritalStatus: { text: 'x' }, name: [{ given: ['A', 'B'], _given: [{ id: 'g0' }, null] }] } as unknown as Patient;
    const out = apply(
      p,
      op('replace', 'Patient.birthDate', [{ name: 'value', valueDate: '1974-12-25' }]),
      op('delete', 'Patient.maritalStatus.text'),
      op('add', 'Patient.name[0]', [{ name: 'name', valueString: 'given' }, { name: 'value', valueString: 'C' }]),
      op('replace', 'Patient.name[0].given[0]', [{ name: 'value', valueString: 'Z' }]),
    ) as unknown as Record<string, unknown>;
    expect(out).toEqual({ resourceType: 'Patient', birthDate: '1974-12-25', name: [{ given: ['Z', 'B', 'C'] }] });
  });

  test('the original resource is never changed', () => {
    const p = patient();
    apply(p, op('delete', 'Patient.name'), op('add', 'Patient', [{ name: 'name', valueString: 'gender' }, { name: 'value', valueCode: 'other' }]));
    expect(p).toEqual(patient());
  });
});

describe('FHIRPath Patch bodies that are refused (400, naming the operation)', () => {
  test.each([
    ['no parameters', { resourceType: 'Parameters' }, /no operation parameters/],
    ['a parameter not named operation', patchOf({ name: 'op', part: [] }), /must be named 'operation'/],
    ['an unknown type', patchOf(op('copy', 'Patient')), /operation\[0\]\.type must be a valueCode/],
    ['an unknown part', patchOf(op('delete', 'Patient.name', [{ name: 'colour', valueString: 'x' }])), /unknown part 'colour'/],
    ['a part given twice', patchOf(op('delete', 'Patient.name', [{ name: 'path', valueString: 'Patient.id' }])), /the part 'path' is given twice/],
    ['a missing value', patchOf(op('replace', 'Patient.birthDate')), /a replace operation needs 'value'/],
    ['a part the type does not take', patchOf(op('delete', 'Patient.name', [{ name: 'index', valueInteger: 0 }])), /a delete operation takes no 'index'/],
    ['a negative index', patchOf(op('insert', 'Patient.name', [{ name: 'value', valueHumanName: {} }, { name: 'index', valueInteger: -1 }])), /valueInteger of 0 or more/],
    ['a value with two value[x]', patchOf(op('replace', 'Patient.gender', [{ name: 'value', valueCode: 'male', valueString: 'x' } as ParametersParameter])), /more than one value\[x\]/],
    ['a regular expression in a path', patchOf(op('delete', "Patient.identifier.where(value.matches('(a+)+$'))")), /matches\(\) is not supported/],
    ['too many operations', patchOf(...Array.from({ length: 1001 }, () => op('delete', 'Patient.name'))), /1001 operations; at most 1000/],
    ['a prototype key in parts', patchOf(op('add', 'Patient', [{ name: 'name', valueString: 'contact' }, { name: 'value', part: [{ name: '__proto__', valueString: 'x' }] }])), /is not an element name/],
  ])('%s', (_what, body, message) => {
    expect(problem(() => parseFhirPatch(body))).toMatch(message);
  });

  test.each([
    ['nested select() over a literal collection', 'Patient.where((0|1|2).select((0|1|2).select(0|1|2)).count() > 0).name', /unexpected '\|'|select\(\) is not supported|expected/],
    ['select()', 'Patient.name.select(given)', /select\(\) is not supported/],
    ['where() inside where()', "Patient.name.where(given.where($this = 'A').exists())", /where\(\) is not supported inside where\(\)/],
    ['a regular expression hidden by a comment', "Patient.name.where(family.matches/**/('(a+)+$'))", /unexpected|not supported/],
    ['matchesFull()', "Patient.name.where(family.matchesFull('(a+)+$'))", /matchesFull\(\) is not supported/],
    ['an environment variable', '%resource.name', /unexpected '%resource/],
  ])('a path outside the patch subset is refused before it runs: %s', (_what, path, message) => {
    expect(problem(() => parseFhirPatch(patchOf(op('delete', path))))).toMatch(message);
  });

  test('the patch subset keeps the paths patches need', () => {
    for (const path of [
      'Patient.name[0].given[1]',
      "Observation.component.where(code.coding.code = '8480-6' and value.exists()).value",
      "Patient.identifier.where(system = 'urn:a' or (use != 'old' and period.end.empty())).first()",
      'Bundle.entry[0].resource.ofType(Patient).birthDate',
      "Patient.extension.where(url = 'http://x').value",
      'Observation.effective.ofType(dateTime)',
      "Patient.name.where($this.family = 'x').last()",
      'Patient.birthDate.where($this > @2000-01-01)',
    ]) {
      expect(() => parseFhirPatch(patchOf(op('delete', path)))).not.toThrow();
    }
  });

  test('paths that do not evaluate, or select what cannot be patched', () => {
    expect(problem(() => apply(patient(), op('delete', 'Patient.name[')))).toMatch(/operation\[0\]\.path 'Patient\.name\[': an index must be a number/);
    expect(problem(() => apply(patient(), op('delete', 'Patient')))).toMatch(/not the resource itself/);
    expect(problem(() => apply(patient(), op('delete', "Patient.name.given.where($this = 'Peter')")))).toMatch(/must end with an element name/);
    expect(problem(() => apply(patient(), op('add', '1 + 1', [{ name: 'name', valueString: 'x' }, { name: 'value', valueString: 'y' }])))).toMatch(/unexpected ' \+ 1' at character 2/);
    expect(problem(() => apply(patient(), op('add', "Patient.identifier.where(system = 'urn:mrn')", [{ name: 'name', valueString: 'x' }, { name: 'value', valueString: 'y' }])))).toMatch(
      /Identifier has no element 'x'/,
    );
    expect(problem(() => apply(patient(), op('insert', 'Patient.birthDate', [{ name: 'value', valueDate: '2000-01-01' }, { name: 'index', valueInteger: 0 }])))).toMatch(
      /not a repeating element of Patient/,
    );
  });
});
