// A file of its own: the base definitions are loaded once per module registry (i.e. per test file).
import { join } from 'node:path';
import type { Patient } from '@medplum/fhirtypes';
import { baseDefinitionsRequested } from '../../src/validation/base-definitions';
import { createProfileValidator } from '../../src/validation/profiles';

const DIR = join(__dirname, '../../fixtures/profiles');
const CCM = 'http://continuum.example/fhir/StructureDefinition/ccm-patient';

it('loads the base R4 definitions only when a resource claims a known profile', async () => {
  const v = createProfileValidator({ profileDirs: [DIR] });
  expect(baseDefinitionsRequested()).toBe(false);

  expect(await v.validate({ resourceType: 'Patient' })).toEqual([]);
  expect(await v.validate({ resourceType: 'Patient', meta: { profile: ['http://unknown.example/x'] } })).toEqual([]);
  expect(baseDefinitionsRequested()).toBe(false);

  const claiming: Patient = { resourceType: 'Patient', meta: { profile: [CCM] } };
  expect((await v.validate(claiming)).some((i) => i.severity === 'error')).toBe(true);
  expect(baseDefinitionsRequested()).toBe(true);
});
