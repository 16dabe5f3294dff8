import { grantCovers, narrowScopes, parseResourceScope, parseScopes } from '../../../src/auth/scopes';

const letters = (scope: string): string => [...(parseResourceScope(scope)?.letters ?? [])].sort().join('');

describe('SMART scopes', () => {
  test.each([
    ['patient/Observation.read', 'rs'],
    ['user/*.write', 'cdu'],
    ['system/*.*', 'cdrsu'],
    ['patient/Observation.rs', 'rs'],
    ['user/Patient.cruds', 'cdrsu'],
    ['system/Encounter.r', 'r'],
    ['patient/Condition.cud', 'cdu'],
  ])('%s grants the letters %s', (scope, expected) => {
    expect(letters(scope)).toBe(expected);
  });

  test.each([
    'patient/Observation.sr', // v2 letters out of order
    'patient/Observation.rr', // repeated
    'patient/Observation.x',
    'patient/Observation.', // no permission
    'clinic/Observation.rs', // unknown context
    'patient/observation.rs', // not a resource type name
    'patient/Observation.read?category=laboratory', // granular queries are v2 only
    'patient/Observation.rs?', // empty query
  ])('%s is not a resource scope', (scope) => {
    expect(parseResourceScope(scope)).toBeUndefined();
  });

  test('granular scopes keep their query; v2 is recorded', () => {
    const g = parseResourceScope('patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs');
    expect(g?.version).toBe(2);
    expect(g?.query).toEqual([['category', 'http://terminology.hl7.org/CodeSystem/observation-category|vital-signs']]);
  });

  test('a scope string splits into resource grants, known other scopes and unknown tokens', () => {
    const p = parseScopes('openid fhirUser launch/patient offline_access patient/*.rs user/Practitioner.read nonsense');
    expect(p.grants.map((g) => g.scope)).toEqual(['patient/*.rs', 'user/Practitioner.read']);
    expect([...p.other].sort()).toEqual(['fhirUser', 'launch/patient', 'offline_access', 'openid']);
    expect(p.unknown).toEqual(['nonsense']);
  });

  test('covering: wildcards, letter subsets, contexts and granular restrictions', () => {
    const g = (s: string) => parseResourceScope(s)!;
    expect(grantCovers(g('patient/*.cruds'), g('patient/Observation.rs'))).toBe(true);
    expect(grantCovers(g('patient/*.read'), g('patient/Observation.rs'))).toBe(true);
    expect(grantCovers(g('patient/*.rs'), g('patient/Observation.c'))).toBe(false);
    expect(grantCovers(g('patient/*.rs'), g('user/Observation.rs'))).toBe(false);
    expect(grantCovers(g('patient/Observation.rs'), g('patient/Condition.rs'))).toBe(false);
    expect(grantCovers(g('patient/Observation.rs'), g('patient/Observation.rs?category=laboratory'))).toBe(true);
    expect(grantCovers(g('patient/Observation.rs?category=laboratory'), g('patient/Observation.rs'))).toBe(false);
    expect(grantCovers(g('patient/Observation.rs?category=laboratory'), g('patient/Observation.rs?category=laboratory'))).toBe(true);
  });

  test('narrowing keeps only what the allowed scopes cover', () => {
    expect(narrowScopes('openid fhirUser patient/*.rs user/*.cruds system/*.rs launch', 'openid patient/*.read user/Patient.rs launch')).toBe('openid patient/*.rs launch');
    expect(narrowScopes('patient/Observation.r patient/Observation.r', 'patient/*.rs')).toBe('patient/Observation.r');
    expect(narrowScopes('', 'patient/*.rs')).toBe('');
  });
});
