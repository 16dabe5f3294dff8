import { FhirError } from '../../src/errors';
import { findDangerousKey, jsonDepthExceeds, parseJsonBody } from '../../src/util/json';

describe('safe JSON parsing', () => {
  test('depth is measured without recursion, ignoring brackets inside strings', () => {
    expect(jsonDepthExceeds('{"a":[{"b":1}]}', 3)).toBe(false);
    expect(jsonDepthExceeds('{"a":[{"b":1}]}', 2)).toBe(true);
    expect(jsonDepthExceeds('{"a":"[[[[[[[[\\"[[["}', 1)).toBe(false);
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    expect(jsonDepthExceeds(deep, 64)).toBe(true);
  });

  test('a deeply nested body is a 400, not a stack overflow', () => {
    const deep = '{"resourceType":"Patient","extension":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}';
    expect(() => parseJsonBody(Buffer.from(deep), 64)).toThrow(/nested more than 64 levels/);
  });

  test('syntax errors say where', () => {
    try {
      parseJsonBody(Buffer.from('{"resourceType": "Patient",}'), 64);
      throw new Error('expected a failure');
    } catch (err) {
      expect(err).toBeInstanceOf(FhirError);
      expect((err as FhirError).category).toBe('invalid');
      expect((err as FhirError).message).toMatch(/not valid JSON/);
    }
  });

  test('prototype-polluting keys are found anywhere, and real text mentioning them is fine', () => {
    expect(findDangerousKey(JSON.parse('{"a":[{"b":{"__proto__":{"x":1}}}]}'))).toBe('a[0].b.__proto__');
    expect(() => parseJsonBody(Buffer.from('{"resourceType":"Patient","constructor":{}}'), 64)).toThrow(/constructor/);
    expect(parseJsonBody(Buffer.from('{"resourceType":"Patient","text":{"div":"the \\"constructor\\" role"}}'), 64)).toEqual({
      resourceType: 'Patient',
      text: { div: 'the "constructor" role' },
    });
  });

  test('an empty body parses to undefined', () => {
    expect(parseJsonBody(Buffer.from('  '), 64)).toBeUndefined();
  });
});

test('a NUL character in any string is a 400 (PostgreSQL text cannot hold it); the escaped text \\\\u0000 is fine', () => {
  expect(() => parseJsonBody(Buffer.from('{"resourceType":"Patient","name":[{"family":"a\\u0000b"}]}'), 64)).toThrow(/NUL character/);
  expect(parseJsonBody(Buffer.from('{"resourceType":"Patient","text":{"div":"\\\\u0000"}}'), 64)).toEqual({ resourceType: 'Patient', text: { div: '\\u0000' } });
});
