/**
 * Parameters that are unions of others (src/search/unions.ts): found from the definitions, not
 * indexed, searched and sorted through their sources.
 */
import { createRegistry } from '../../../src/search/definitions';
import { extractIndexValues } from '../../../src/search/extract';
import { SearchParser } from '../../../src/search/parse';
import { indexedParams, unionSources } from '../../../src/search/unions';
import { isResourceType } from '../../../src/validation/schema';
import { bloodPressure } from './fixtures';

const options = { lenient: false, baseUrl: 'http://continuum.test', defaultCount: 20, maxCount: 1000, isResourceType };

function unionsOf(registry: ReturnType<typeof createRegistry>, type: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const def of registry.forType(type)) {
    const sources = unionSources(registry, type, def);
    if (sources) {
      out[def.code] = sources.map((s) => s.code);
    }
  }
  return out;
}

test('the R4 unions are the combo- parameters of Observation, each of the resource-level and the component-level one', () => {
  const registry = createRegistry();
  expect(unionsOf(registry, 'Observation')).toEqual({
    'combo-code': ['code', 'component-code'],
    'combo-data-absent-reason': ['data-absent-reason', 'component-data-absent-reason'],
    'combo-value-concept': ['value-concept', 'component-value-concept'],
    'combo-value-quantity': ['value-quantity', 'component-value-quantity'],
    'combo-code-value-concept': ['code-value-concept', 'component-code-value-concept'],
    'combo-code-value-quantity': ['code-value-quantity', 'component-code-value-quantity'],
  });
  const others = registry.baseTypes().filter((t) => t !== 'Observation' && Object.keys(unionsOf(registry, t)).length > 0);
  expect(others).toEqual([]);
  expect(indexedParams(registry, 'Observation').map((d) => d.code)).not.toContain('combo-code');
  expect(indexedParams(registry, 'Observation').map((d) => d.code)).toContain('component-code');
});

test('a union added at run time stops being one when a source goes, and is indexed again', () => {
  const registry = createRegistry();
  const both = { resourceType: 'SearchParameter' as const, status: 'active' as const, base: ['Patient'], type: 'string' as const };
  registry.add({ ...both, url: 'urn:test:city-or-district', code: 'city-or-district', expression: 'Patient.address.city | Patient.address.district' });
  expect(unionsOf(registry, 'Patient')).toEqual({});
  registry.add({ ...both, url: 'urn:test:district', code: 'district', expression: 'Patient.address.district' });
  // address-city (R4) is Patient.address.city; district now covers the other branch.
  expect(unionsOf(registry, 'Patient')).toEqual({ 'city-or-district': ['address-city', 'district'] });
  const patient = { resourceType: 'Patient', address: [{ city: 'Salem', district: 'Essex' }] };
  expect(extractIndexValues(patient, registry).string.filter((r) => r.code === 'city-or-district')).toEqual([]);
  registry.remove('urn:test:district');
  expect(unionsOf(registry, 'Patient')).toEqual({});
  expect(
    extractIndexValues(patient, registry)
      .string.filter((r) => r.code === 'city-or-district')
      .map((r) => r.value),
  ).toEqual(['Salem', 'Essex']);
});

describe('searching a union', () => {
  const parser = new SearchParser(createRegistry(), options);
  const filters = (qs: string): unknown => parser.parse('Observation', Object.fromEntries([...new URLSearchParams(qs)].map(([k, v]) => [k, [v]]))).filters;

  test('a value: the same value on any source', () => {
    expect(filters('combo-code=http://loinc.org|8480-6')).toEqual([
      {
        kind: 'or',
        filters: [
          { kind: 'token', code: 'code', values: [{ system: 'http://loinc.org', value: '8480-6' }] },
          { kind: 'token', code: 'component-code', values: [{ system: 'http://loinc.org', value: '8480-6' }] },
        ],
      },
    ]);
  });

  test(':missing=true is missing on every source, :missing=false present on any, :not matches none', () => {
    expect(filters('combo-value-quantity:missing=true')).toEqual([
      {
        kind: 'and',
        filters: [
          { kind: 'missing', table: 'quantity', code: 'value-quantity', missing: true },
          { kind: 'missing', table: 'quantity', code: 'component-value-quantity', missing: true },
        ],
      },
    ]);
    expect(filters('combo-value-quantity:missing=false')).toEqual([
      {
        kind: 'or',
        filters: [
          { kind: 'missing', table: 'quantity', code: 'value-quantity', missing: false },
          { kind: 'missing', table: 'quantity', code: 'component-value-quantity', missing: false },
        ],
      },
    ]);
    expect(filters('combo-code:not=x')).toEqual([
      {
        kind: 'not',
        filter: {
          kind: 'or',
          filters: [
            { kind: 'token', code: 'code', values: [{ value: 'x' }] },
            { kind: 'token', code: 'component-code', values: [{ value: 'x' }] },
          ],
        },
      },
    ]);
  });

  test('a sort reads every source; errors name the parameter asked for', () => {
    expect(parser.parse('Observation', { _sort: ['-combo-code'] }).sort).toEqual([
      { kind: 'param', table: 'token', code: 'combo-code', codes: ['code', 'component-code'], descending: true },
    ]);
    expect(() => filters('combo-code:exact=x')).toThrow("Search parameter 'combo-code' (token) does not support the modifier ':exact'");
    expect(() => filters('combo-code-value-quantity=http://loinc.org|8480-6')).toThrow(/combo-code-value-quantity/);
  });

  test('the extracted rows of a blood pressure hold every value the unions would have had', () => {
    const rows = extractIndexValues(bloodPressure, createRegistry());
    const codes = (code: string): string[] => rows.token.filter((r) => r.code === code).map((r) => `${r.system}|${r.value}`);
    expect(codes('combo-code')).toEqual([]);
    expect([...codes('code'), ...codes('component-code')]).toEqual(expect.arrayContaining(['http://loinc.org|85354-9', 'http://loinc.org|8480-6', 'http://loinc.org|8462-4']));
  });
});

test('a reference union added at run time: _include, _has and chains go through each source', () => {
  const registry = createRegistry();
  registry.add({
    resourceType: 'SearchParameter',
    status: 'active',
    url: 'urn:test:subject-or-performer',
    code: 'subject-or-performer',
    base: ['Observation'],
    type: 'reference',
    target: ['Patient', 'Practitioner'],
    expression: 'Observation.subject | Observation.performer',
  });
  expect(unionsOf(registry, 'Observation')['subject-or-performer']).toEqual(['subject', 'performer']);
  const parser = new SearchParser(registry, options);
  const include = parser.parse('Observation', { _include: ['Observation:subject-or-performer'] }).include;
  expect(include.map((i) => i.code)).toEqual(['subject', 'performer']);
  const has = parser.parse('Patient', { '_has:Observation:subject-or-performer:status': ['final'] }).filters;
  expect(has).toEqual([
    {
      kind: 'or',
      filters: ['subject', 'performer'].map((code) => ({ kind: 'has', sourceType: 'Observation', code, filters: [{ kind: 'token', code: 'status', values: [{ value: 'final' }] }] })),
    },
  ]);
  const chain = parser.parse('Observation', { 'subject-or-performer:Patient.name': ['kim'] }).filters;
  expect(chain).toEqual([
    {
      kind: 'or',
      filters: ['subject', 'performer'].map((code) => ({ kind: 'chain', code, targetType: 'Patient', filters: [{ kind: 'string', code: 'name', mode: 'starts', values: ['kim'] }] })),
    },
  ]);
});
