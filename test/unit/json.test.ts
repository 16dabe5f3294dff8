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

  test('strings ending in backslashes or holding escaped quotes and brackets do not confuse the depth', () => {
    // The string's content is x\\ (two backslashes): its closing quote is real, the brackets after count.
    expect(jsonDepthExceeds('{"a":"x\\\\","b":[[1]]}', 2)).toBe(true);
    expect(jsonDepthExceeds('{"a":"x\\\\","b":[[1]]}', 3)).toBe(false);
    // An escaped quote (odd run) keeps the string open: these brackets are text.
    expect(jsonDepthExceeds('{"a":"\\\\\\"[[[[","b":1}', 1)).toBe(false);
    expect(jsonDepthExceeds('{"a":"\\"}', 1)).toBe(false);
    // An unterminated string is left to JSON.parse.
    expect(jsonDepthExceeds('{"a":"[[[[', 1)).toBe(false);
  });

  test('depth agrees with the nesting of the parsed value on generated documents', () => {
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const pieces = ['a', '[', ']', '{', '}', '"', '\\', '\\\\', '\\"', 'é', ' '];
    const text = (): string => Array.from({ length: random(12) }, () => pieces[random(pieces.length)]).join('');
    const value = (level: number): unknown => {
      const k = level > 6 ? 0 : random(4);
      if (k === 0) return text();
      if (k === 1) return random(100);
      if (k === 2) return Array.from({ length: random(4) }, () => value(level + 1));
      return Object.fromEntries(Array.from({ length: random(4) }, () => [text(), value(level + 1)]));
    };
    const depthOf = (v: unknown): number =>
      typeof v === 'object' && v !== null ? 1 + Math.max(0, ...Object.values(v as object).map(depthOf)) : 0;
    for (let n = 0; n < 500; n++) {
      const v = value(0);
      const json = JSON.stringify(v, null, n % 2 === 0 ? 0 : 2);
      const depth = depthOf(v);
      expect({ json, exceeds: jsonDepthExceeds(json, depth) }).toEqual({ json, exceeds: false });
      if (depth > 0) {
        expect({ json, exceeds: jsonDepthExceeds(json, depth - 1) }).toEqual({ json, exceeds: true });
      }
    }
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
