import { type FhirError } from '../../src/errors';
import { INTERACTIONS, route } from '../../src/fhir/router';

describe('the interaction table and router', () => {
  test.each([
    ['GET', 'metadata', 'capabilities'],
    ['POST', '', 'transaction'],
    ['GET', '_history', 'history-system'],
    ['POST', 'Patient', 'create'],
    ['GET', 'Patient/_history', 'history-type'],
    ['GET', 'Patient/1', 'read'],
    ['HEAD', 'Patient/1', 'read'],
    ['PUT', 'Patient/1', 'update'],
    ['PATCH', 'Patient/1', 'patch'],
    ['DELETE', 'Patient/1', 'delete'],
    ['GET', 'Patient/1/_history', 'history-instance'],
    ['GET', 'Patient/1/_history/2', 'vread'],
    ['POST', 'Patient/$validate', 'operation'],
    ['POST', 'Patient/1/$validate', 'operation'],
  ] as const)('%s /%s is %s', (method, path, interaction) => {
    expect(route(method, path).row.interaction).toBe(interaction);
  });

  test('a known path with the wrong method is 405; an unknown path or operation is 404', () => {
    const category = (f: () => unknown): string => {
      try {
        f();
        return 'none';
      } catch (err) {
        return (err as FhirError).category;
      }
    };
    expect(category(() => route('DELETE', 'metadata'))).toBe('method-not-allowed');
    expect(category(() => route('GET', 'Patient/1/_history/2/extra'))).toBe('not-found');
    expect(category(() => route('POST', 'Patient/$frobnicate'))).toBe('not-found');
  });

  test('every row has a scope letter and a level', () => {
    for (const row of INTERACTIONS) {
      expect(['c', 'r', 'u', 'd', 's', 'none']).toContain(row.scope);
      expect(['system', 'type', 'instance']).toContain(row.level);
    }
  });
});
