import { FhirError } from '../../src/errors';
import { applyJsonPatch, parsePatch } from '../../src/fhir/jsonpatch';

const doc = { resourceType: 'Patient', name: [{ given: ['A', 'B'] }], active: true };

describe('JSON Patch (RFC 6902)', () => {
  test('add, replace, remove, move, copy and test apply in order to a copy', () => {
    const out = applyJsonPatch(doc, [
      { op: 'add', path: '/name/0/given/-', value: 'C' },
      { op: 'replace', path: '/active', value: false },
      { op: 'remove', path: '/name/0/given/0' },
      { op: 'copy', from: '/name/0', path: '/name/1' },
      { op: 'move', from: '/active', path: '/deceasedBoolean' },
      { op: 'test', path: '/deceasedBoolean', value: false },
    ]);
    expect(out).toEqual({ resourceType: 'Patient', name: [{ given: ['B', 'C'] }, { given: ['B', 'C'] }], deceasedBoolean: false });
    expect(doc.name[0].given).toEqual(['A', 'B']);
  });

  test('a failed test op is a 422', () => {
    expect(() => applyJsonPatch(doc, [{ op: 'test', path: '/active', value: false }])).toThrow(FhirError);
    try {
      applyJsonPatch(doc, [{ op: 'test', path: '/active', value: false }]);
    } catch (err) {
      expect((err as FhirError).category).toBe('unprocessable');
    }
  });

  test('paths into missing elements and out-of-range indexes fail', () => {
    expect(() => applyJsonPatch(doc, [{ op: 'replace', path: '/gender', value: 'x' }])).toThrow(/does not exist/);
    expect(() => applyJsonPatch(doc, [{ op: 'add', path: '/name/5', value: {} }])).toThrow(/out of bounds/);
    expect(() => applyJsonPatch(doc, [{ op: 'add', path: '/__proto__/x', value: 1 }])).toThrow(/not allowed/);
  });

  test('parsePatch rejects malformed documents with a 400 naming the operation', () => {
    expect(() => parsePatch({ op: 'add' })).toThrow(/array/);
    expect(() => parsePatch([{ op: 'frobnicate', path: '/a' }])).toThrow(/unknown op 'frobnicate'/);
    expect(() => parsePatch([{ op: 'add', path: '/a' }])).toThrow(/needs a 'value'/);
    expect(() => parsePatch([{ op: 'move', path: '/a' }])).toThrow(/needs a string 'from'/);
  });
});
