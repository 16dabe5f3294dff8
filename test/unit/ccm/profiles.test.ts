/**
 * The CCM conformance resources in profiles/ as files (no server):
 * - the generated StructureDefinitions are what profiles/build.mjs makes from profiles/src;
 * - every file is valid R4, named after its type and id, and loads without problems;
 * - every CCM profile has valid and invalid examples in fixtures/ccm/, all listed in its manifest.
 * The examples themselves run against a server in test/e2e/ccm/profiles.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Resource } from '@medplum/fhirtypes';
import { loadSearchParameterFiles } from '../../../src/search/custom-parameters';
import { createRegistry } from '../../../src/search/definitions';
import { createProfileValidator } from '../../../src/validation/profiles';
import { validateStructure } from '../../../src/validation/schema';

const ROOT = join(__dirname, '../../..');
const PROFILES = join(ROOT, 'profiles');
const FIXTURES = join(ROOT, 'fixtures/ccm');
const SD = 'http://continuum-ccm.org/fhir/StructureDefinition/';

const CCM_PROFILES = [
  'chronic-category',
  'care-plan-review-date',
  'ccm-careplan',
  'ccm-goal',
  'ccm-consent',
  'ccm-time-entry',
  'ccm-odl',
  'ccm-eligibility-determination',
].map((id) => SD + id);

const profileFiles = readdirSync(PROFILES).filter((f) => f.endsWith('.json')).sort();
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'examples.json'), 'utf8')) as { examples: { file: string; profile: string; valid: boolean }[] };

describe('profiles/', () => {
  test('the generated StructureDefinitions are what profiles/build.mjs makes from profiles/src (run npm run profiles)', () => {
    let output = '';
    try {
      execFileSync(process.execPath, [join(PROFILES, 'build.mjs'), '--check'], { encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      output = String((err as { stderr?: string }).stderr ?? err);
    }
    expect(output).toBe('');
  });

  test('every StructureDefinition, ValueSet and CodeSystem loads without problems', () => {
    const validator = createProfileValidator({ profileDirs: [PROFILES], onProblem: () => undefined });
    expect(validator.problems).toEqual([]);
    expect(validator.knownProfiles()).toEqual(expect.arrayContaining(CCM_PROFILES));
  });

  test('every SearchParameter loads', () => {
    expect(loadSearchParameterFiles(createRegistry(), [PROFILES])).toEqual([]);
  });

  test.each(profileFiles)('%s is valid R4', (file) => {
    const resource = JSON.parse(readFileSync(join(PROFILES, file), 'utf8')) as Resource;
    expect(validateStructure(resource).filter((i) => i.severity === 'error')).toEqual([]);
    expect(file).toBe(`${resource.resourceType}-${resource.id as string}.json`);
  });

  test('every profile has examples: at least one valid and one invalid', () => {
    for (const url of CCM_PROFILES) {
      const mine = manifest.examples.filter((e) => e.profile === url);
      expect({ url, valid: mine.some((e) => e.valid), invalid: mine.some((e) => !e.valid) }).toEqual({ url, valid: true, invalid: true });
    }
    const listed = new Set(manifest.examples.map((e) => e.file));
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json') && f !== 'examples.json');
    expect(files.filter((f) => !listed.has(f))).toEqual([]);
  });
});

