import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ElementDefinition, OperationOutcomeIssue, Patient, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { createProfileValidator, type ProfileValidator } from '../../src/validation/profiles';

const DIR = join(__dirname, '../../fixtures/profiles');
const BROKEN = join(DIR, 'broken');
const BASE = 'http://continuum.example/fhir';
const CCM = `${BASE}/StructureDefinition/ccm-patient`;
const MRN = `${BASE}/sid/mrn`;
const ROLE = `${BASE}/CodeSystem/ccm-contact-role`;
const MARITAL = 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus';

/** A Patient that meets every rule of the ccm-patient fixture profile. */
function conforming(): Patient {
  return {
    resourceType: 'Patient',
    meta: { profile: [CCM] },
    identifier: [
      { system: 'http://other.example/ids', value: 'A-1' },
      { system: MRN, value: '12345' },
    ],
    name: [{ use: 'official', family: 'Rivera', given: ['Ana'] }],
    telecom: [{ system: 'phone', value: '555-0100' }],
    gender: 'female',
    birthDate: '1948-03-02',
    maritalStatus: { coding: [{ system: MARITAL, code: 'W' }] },
    contact: [
      {
        name: { family: 'Rivera', given: ['Luis'] },
        relationship: [{ coding: [{ system: ROLE, code: 'paid-caregiver' }] }],
        telecom: [{ system: 'phone', value: '555-0101' }],
      },
    ],
    communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'fr' }] } }],
  };
}

function errors(issues: OperationOutcomeIssue[]): OperationOutcomeIssue[] {
  return issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
}

function fixtureProfile(): StructureDefinition {
  return JSON.parse(readFileSync(join(DIR, 'StructureDefinition-ccm-patient.json'), 'utf8')) as StructureDefinition;
}

/** The one error issue, checked for the expression and for naming the profile. */
function onlyError(issues: OperationOutcomeIssue[], expression: string, url = CCM): OperationOutcomeIssue {
  const errs = errors(issues);
  expect(errs.map((i) => i.expression?.[0])).toEqual([expression]);
  expect(errs[0].details?.text).toContain(url);
  expect(errs[0].diagnostics).toContain(url);
  return errs[0];
}

describe('profile validation with the fixture profiles', () => {
  let validator: ProfileValidator;
  const problems: string[] = [];

  beforeAll(() => {
    validator = createProfileValidator({ profileDirs: [DIR], onProblem: (m) => problems.push(m) });
  });

  it('loads the profile, ValueSets and CodeSystem without problems', () => {
    expect(validator.knownProfiles()).toEqual([CCM]);
    expect(validator.problems).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('accepts a conforming resource with no issues at all, and does not change it', async () => {
    const p = conforming();
    expect(await validator.validate(p)).toEqual([]);
    expect(p).toEqual(conforming());
  });

  it('reports a missing 1..1 element (birthDate)', async () => {
    const p = conforming();
    delete p.birthDate;
    const issue = onlyError(await validator.validate(p), 'Patient.birthDate');
    expect(issue.code).toBe('required');
    expect(issue.details?.text).toMatch(/required/);
  });

  it('reports a value that differs from fixed[x] (gender), saying what is expected', async () => {
    const issue = onlyError(await validator.validate({ ...conforming(), gender: 'male' }), 'Patient.gender');
    expect(issue.code).toBe('value');
    expect(issue.details?.text).toContain('"female"');
  });

  it('reports a missing element inside a data type, at the right index (name[1].family)', async () => {
    const p = conforming();
    p.name = [p.name![0], { given: ['Annie'] }];
    onlyError(await validator.validate(p), 'Patient.name[1].family');
  });

  it('reports a missing element inside a backbone element (contact.name 1..1)', async () => {
    const p = conforming();
    delete p.contact![0].name;
    onlyError(await validator.validate(p), 'Patient.contact[0].name');
  });

  it('reports too many values (cardinality max)', async () => {
    const sd = fixtureProfile();
    sd.url = `${BASE}/StructureDefinition/one-name`;
    sd.snapshot!.element.find((e) => e.id === 'Patient.name')!.max = '1';
    const v = createProfileValidator({ profileDirs: [], lookup: async () => sd });
    const p = { ...conforming(), meta: { profile: [sd.url] } };
    expect(await v.validate(p)).toEqual([]);
    p.name = [p.name![0], { use: 'nickname', family: 'Riv' }];
    const issue = onlyError(await v.validate(p), 'Patient.name', sd.url);
    expect(issue.details?.text).toContain('0..1');
    expect(issue.details?.text).toContain('has 2');
  });

  it('names a choice element by its FHIRPath name (deceased, not deceased[x])', async () => {
    const sd = fixtureProfile();
    sd.url = `${BASE}/StructureDefinition/deceased-required`;
    sd.snapshot!.element.find((e) => e.id === 'Patient.deceased[x]')!.min = 1;
    const v = createProfileValidator({ profileDirs: [], lookup: async () => sd });
    const p = { ...conforming(), meta: { profile: [sd.url] } };
    onlyError(await v.validate(p), 'Patient.deceased', sd.url);
    expect(await v.validate({ ...p, deceasedBoolean: false })).toEqual([]);
  });

  it('reports a required slice that is missing (identifier:mrn, pattern on system)', async () => {
    const p = conforming();
    p.identifier = [{ system: 'http://other.example/ids', value: 'A-1' }];
    const issue = onlyError(await validator.validate(p), 'Patient.identifier');
    expect(issue.details?.text).toContain("slice 'mrn'");
  });

  it('reports a code outside a required ValueSet of explicit concepts (maritalStatus)', async () => {
    const p = { ...conforming(), maritalStatus: { coding: [{ system: MARITAL, code: 'D' }] } };
    const issue = onlyError(await validator.validate(p), 'Patient.maritalStatus');
    expect(issue.code).toBe('code-invalid');
    expect(issue.details?.text).toContain(`${BASE}/ValueSet/ccm-marital-status`);
    expect(issue.details?.text).toContain("'D'");
  });

  it('reports a CodeableConcept with only text under a required binding', async () => {
    const p = { ...conforming(), maritalStatus: { text: 'widowed' } };
    onlyError(await validator.validate(p), 'Patient.maritalStatus');
  });

  it('accepts a CodeableConcept when one of its codings is in the ValueSet', async () => {
    const p = { ...conforming(), maritalStatus: { coding: [{ system: 'http://local', code: 'x' }, { system: MARITAL, code: 'M' }] } };
    expect(errors(await validator.validate(p))).toEqual([]);
  });

  it('reports a code outside a ValueSet that includes a whole CodeSystem (contact.relationship)', async () => {
    const p = conforming();
    p.contact![0].relationship = [
      { coding: [{ system: ROLE, code: 'caregiver' }] },
      { coding: [{ system: ROLE, code: 'friend' }] },
    ];
    const issue = onlyError(await validator.validate(p), 'Patient.contact[0].relationship[1]');
    expect(issue.details?.text).toContain("'friend'");
  });

  it('requires the system to match, not just the code', async () => {
    const p = conforming();
    p.contact![0].relationship = [{ coding: [{ system: 'http://elsewhere', code: 'caregiver' }] }];
    onlyError(await validator.validate(p), 'Patient.contact[0].relationship[0]');
  });

  it('reports a code outside a pre-expanded ValueSet (communication.language)', async () => {
    const p = conforming();
    p.communication = [p.communication![0], { language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'de' }] } }];
    onlyError(await validator.validate(p), 'Patient.communication[1].language');
  });

  it('reports an error invariant (ccm-1) as an error with its expression', async () => {
    const p = conforming();
    delete p.telecom;
    const issue = onlyError(await validator.validate(p), 'Patient');
    expect(issue.code).toBe('invariant');
    expect(issue.details?.text).toContain('ccm-1');
    expect(issue.diagnostics).toContain('telecom.exists() or address.exists()');
  });

  it('reports a warning invariant (ccm-2) as a warning only', async () => {
    const p = conforming();
    p.name = [{ use: 'usual', family: 'Rivera' }];
    const issues = await validator.validate(p);
    expect(errors(issues)).toEqual([]);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ severity: 'warning', code: 'invariant', expression: ['Patient'] });
    expect(issues[0].details?.text).toContain('ccm-2');
    expect(issues[0].details?.text).toContain(CCM);
  });

  it('does not report the base specification’s best-practice warnings (dom-6: no narrative)', async () => {
    const issues = await validator.validate(conforming());
    expect(issues.some((i) => i.details?.text?.includes('dom-6'))).toBe(false);
  });

  it('checks the base invariants the snapshot carries (pat-1 on contact)', async () => {
    const p = conforming();
    p.contact = [{ relationship: [{ coding: [{ system: ROLE, code: 'caregiver' }] }], name: { family: 'X' } }];
    expect(errors(await validator.validate(p))).toEqual([]);
    p.contact = [{ relationship: [{ coding: [{ system: ROLE, code: 'caregiver' }] }], gender: 'male' } as never];
    const errs = errors(await validator.validate(p));
    expect(errs.map((i) => i.expression?.[0]).sort()).toEqual(['Patient.contact[0]', 'Patient.contact[0].name']);
    expect(errs.find((i) => i.code === 'invariant')?.details?.text).toContain('pat-1');
  });

  it('reports every violation at once', async () => {
    const p: Patient = { resourceType: 'Patient', meta: { profile: [CCM] }, gender: 'other', name: [{ use: 'official', given: ['A'] }] };
    const where = errors(await validator.validate(p)).map((i) => i.expression?.[0]).sort();
    expect(where).toEqual(['Patient', 'Patient.birthDate', 'Patient.gender', 'Patient.identifier', 'Patient.name[0].family']);
  });

  it('ignores a profile it does not know', async () => {
    const p: Patient = { resourceType: 'Patient', meta: { profile: ['http://unknown.example/StructureDefinition/x'] } };
    expect(await validator.validate(p)).toEqual([]);
  });

  it('checks the known profiles among unknown ones', async () => {
    const p = conforming();
    p.meta = { profile: ['http://unknown.example/StructureDefinition/x', CCM] };
    delete p.birthDate;
    onlyError(await validator.validate(p), 'Patient.birthDate');
  });

  it('does not check a resource without meta.profile', async () => {
    const p = conforming();
    delete p.meta;
    delete p.birthDate;
    p.gender = 'male';
    expect(await validator.validate(p)).toEqual([]);
  });

  it('matches a versioned canonical only for the version it has', async () => {
    const p = conforming();
    delete p.birthDate;
    p.meta = { profile: [`${CCM}|1.0.0`] };
    onlyError(await validator.validate(p), 'Patient.birthDate');
    p.meta = { profile: [`${CCM}|2.0.0`] };
    expect(await validator.validate(p)).toEqual([]);
  });

  it('reports a profile claimed by the wrong resource type', async () => {
    const o = { resourceType: 'Observation', meta: { profile: [CCM] }, status: 'final', code: { text: 'x' } } as Resource;
    const issue = onlyError(await validator.validate(o), 'Observation');
    expect(issue.details?.text).toContain('profile on Patient');
  });

  it('checks contained resources that claim a profile, with their location', async () => {
    const contained = conforming();
    delete contained.birthDate;
    contained.id = 'p1';
    const o = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      subject: { reference: '#p1' },
      contained: [contained],
    } as Resource;
    onlyError(await validator.validate(o), 'Observation.contained[0].birthDate');
  });
});

describe('profile folders', () => {
  it('accepts an absent folder and an empty folder', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'profiles-'));
    const problems: string[] = [];
    const v = createProfileValidator({ profileDirs: [empty, join(empty, 'absent')], onProblem: (m) => problems.push(m) });
    expect(v.knownProfiles()).toEqual([]);
    expect(problems).toEqual([]);
    expect(await v.validate({ ...conforming(), birthDate: undefined })).toEqual([]);
  });

  it('reports a differential-only profile and unreadable files at load time', async () => {
    const problems: string[] = [];
    const v = createProfileValidator({ profileDirs: [BROKEN], onProblem: (m) => problems.push(m) });
    expect(v.problems).toEqual(problems);
    expect(problems).toHaveLength(2);
    expect(problems.find((m) => m.includes('not-json.json'))).toMatch(/not readable JSON/);
    expect(problems.find((m) => m.includes('differential-only'))).toMatch(/no snapshot \(only a differential\)/);

    // A resource claiming it is not rejected, but told the profile was not applied.
    const p: Patient = { resourceType: 'Patient', meta: { profile: [`${BASE}/StructureDefinition/differential-only`] } };
    const issues = await v.validate(p);
    expect(errors(issues)).toEqual([]);
    expect(issues).toEqual([expect.objectContaining({ severity: 'warning', code: 'not-supported', expression: ['Patient.meta.profile[0]'] })]);
  });
});

describe('profiles from the lookup callback', () => {
  const OTHER = `${BASE}/StructureDefinition/stored`;

  /** The fixture profile under another URL, optionally changed. */
  function stored(change?: (elements: ElementDefinition[]) => void): StructureDefinition {
    const sd = fixtureProfile();
    sd.url = OTHER;
    sd.id = 'stored';
    change?.(sd.snapshot!.element);
    return sd;
  }

  function claiming(url = OTHER): Patient {
    return { ...conforming(), meta: { profile: [url] } };
  }

  it('validates against a profile the lookup returns, and caches it briefly', async () => {
    let clock = 0;
    const lookup = jest.fn(async (url: string) => (url === OTHER ? stored() : undefined));
    const v = createProfileValidator({ profileDirs: [DIR], lookup, lookupTtlMs: 1000, now: () => clock, onProblem: () => {} });
    const bad = { ...claiming(), birthDate: undefined };
    onlyError(await v.validate(bad), 'Patient.birthDate', OTHER);
    expect(await v.validate(claiming())).toEqual([]);
    expect(lookup).toHaveBeenCalledTimes(1);
    expect(lookup).toHaveBeenCalledWith(OTHER);

    clock = 1001;
    await v.validate(claiming());
    expect(lookup).toHaveBeenCalledTimes(2);

    // Profiles from files do not ask the lookup.
    await v.validate(conforming());
    expect(lookup).toHaveBeenCalledTimes(2);
  });

  it('sees a changed profile after invalidate(url)', async () => {
    let current = stored();
    const lookup = jest.fn(async () => current);
    const v = createProfileValidator({ profileDirs: [DIR], lookup, onProblem: () => {} });
    const p = { ...claiming(), gender: 'male' as const };
    onlyError(await v.validate(p), 'Patient.gender', OTHER);

    current = stored((els) => {
      delete els.find((e) => e.id === 'Patient.gender')!.fixedCode;
    });
    expect(errors(await v.validate(p))).toHaveLength(1); // still cached
    v.invalidate(OTHER);
    expect(errors(await v.validate(p))).toEqual([]);
    expect(lookup).toHaveBeenCalledTimes(2);
  });

  it('ignores URLs the lookup does not know, and remembers that briefly', async () => {
    const lookup = jest.fn(async () => undefined);
    const v = createProfileValidator({ profileDirs: [], lookup });
    const p: Patient = { resourceType: 'Patient', meta: { profile: ['http://unknown.example/x'] } };
    expect(await v.validate(p)).toEqual([]);
    expect(await v.validate(p)).toEqual([]);
    expect(lookup).toHaveBeenCalledTimes(1);
  });

  it('does not fail a required binding to a ValueSet the server does not have', async () => {
    const v = createProfileValidator({
      profileDirs: [DIR],
      lookup: async () =>
        stored((els) => {
          els.find((e) => e.id === 'Patient.maritalStatus')!.binding = { strength: 'required', valueSet: 'http://unknown.example/ValueSet/x' };
        }),
    });
    const p = { ...claiming(), maritalStatus: { coding: [{ system: MARITAL, code: 'D' }] } };
    expect(errors(await v.validate(p))).toEqual([]);
  });

  it('does not fail a code when the ValueSet includes a whole CodeSystem the server does not have', async () => {
    const v = createProfileValidator({
      profileDirs: [DIR],
      lookup: async () =>
        stored((els) => {
          els.find((e) => e.id === 'Patient.contact.relationship')!.binding = {
            strength: 'required',
            valueSet: `${BASE}/ValueSet/ccm-problem-codes`,
          };
        }),
    });
    expect(errors(await v.validate(claiming()))).toEqual([]);
  });

  it('knows a ValueSet of explicit concepts fully, even without their CodeSystem', async () => {
    const v = createProfileValidator({
      profileDirs: [DIR],
      lookup: async () =>
        stored((els) => {
          els.find((e) => e.id === 'Patient.contact.relationship')!.binding = {
            strength: 'required',
            valueSet: `${BASE}/ValueSet/ccm-marital-status`,
          };
        }),
    });
    // 'paid-caregiver' is not among ccm-marital-status's concepts.
    onlyError(await v.validate(claiming()), 'Patient.contact[0].relationship[0]', OTHER);
  });

  it('checks a required extension slice by its url (type.profile only in the snapshot)', async () => {
    const EXT = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex';
    const v = createProfileValidator({
      profileDirs: [DIR],
      lookup: async () =>
        stored((els) => {
          const i = els.findIndex((e) => e.id === 'Patient.extension');
          els[i] = { ...els[i], slicing: { discriminator: [{ type: 'value', path: 'url' }], rules: 'open' } };
          els.splice(i + 1, 0, {
            id: 'Patient.extension:birthsex',
            path: 'Patient.extension',
            sliceName: 'birthsex',
            min: 1,
            max: '1',
            base: { path: 'DomainResource.extension', min: 0, max: '*' },
            type: [{ code: 'Extension', profile: [EXT] }],
          });
        }),
    });
    const withExt = { ...claiming(), extension: [{ url: EXT, valueCode: 'F' }] };
    expect(await v.validate(withExt)).toEqual([]);
    const other = { ...claiming(), extension: [{ url: 'http://example.org/other', valueString: 'x' }] };
    const issue = onlyError(await v.validate(other), 'Patient.extension', OTHER);
    expect(issue.details?.text).toContain("slice 'birthsex'");
  });

  it('warns (does not reject) when a stored profile has no snapshot', async () => {
    const v = createProfileValidator({
      profileDirs: [],
      lookup: async () => ({ ...stored(), snapshot: undefined, differential: { element: [{ path: 'Patient' }] } }),
    });
    const issues = await v.validate(claiming());
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ severity: 'warning', code: 'not-supported' });
    expect(issues[0].details?.text).toMatch(/no snapshot/);
  });

  it('notes an unsupported slicing discriminator and still checks the rest', async () => {
    const v = createProfileValidator({
      profileDirs: [],
      lookup: async () =>
        stored((els) => {
          els.find((e) => e.id === 'Patient.identifier')!.slicing = { discriminator: [{ type: 'exists', path: 'system' }], rules: 'open' };
        }),
    });
    const p = { ...claiming(), identifier: [{ value: 'x' }], birthDate: undefined };
    const issues = await v.validate(p);
    onlyError(issues, 'Patient.birthDate', OTHER);
    expect(issues.some((i) => i.severity === 'information' && i.details?.text?.includes('Patient.identifier'))).toBe(true);
  });
});
