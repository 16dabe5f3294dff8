import { countParam, instantParam } from '../../src/fhir/common';
import type { FhirRequest } from '../../src/fhir/types';

const req = (count?: string): FhirRequest => ({ method: 'GET', path: 'x', query: count === undefined ? {} : { _count: [count] } });

describe('parameter parsing', () => {
  test.each([
    ['2026', '2026-01-01T00:00:00.000Z'],
    ['2026-02', '2026-02-01T00:00:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z'],
    ['2026-01-31T09:30:00+02:00', '2026-01-31T07:30:00.000Z'],
    ['2026-01-31T09:30Z', '2026-01-31T09:30:00.000Z'],
  ])('instant %s is %s', (raw, iso) => {
    expect(instantParam('_since', raw)).toBe(iso);
  });

  test.each(['2026-02-30', '2025-02-29', '2026-13', '2026-01-31T09:30:00', 'yesterday', '2026-01-31T25:00:00Z', ''])('instant %p is refused', (raw) => {
    expect(() => instantParam('_since', raw)).toThrow(/_since must be a date or an instant/);
  });

  test('_count: default, cap at the maximum, digits only', () => {
    expect(countParam(req(), 20, 1000)).toBe(20);
    expect(countParam(req('0'), 20, 1000)).toBe(0);
    expect(countParam(req('5000'), 20, 1000)).toBe(1000);
    for (const bad of ['', '-1', '1.5', ' 1', 'abc']) {
      expect(() => countParam(req(bad), 20, 1000)).toThrow(/_count must be a non-negative integer/);
    }
  });
});
