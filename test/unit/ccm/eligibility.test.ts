/**
 * The eligibility rule of ccm-domain.md section 2, clause by clause: each clause has a case that
 * passes and one that fails it. Uses the chronic-category table shipped in profiles/.
 */
import { join } from 'node:path';
import type { Condition, Patient } from '@medplum/fhirtypes';
import { ChronicCategories } from '../../../src/ccm/categories';
import { eligibilityPartOf, eligibilityPatientOf, evaluateEligibility } from '../../../src/ccm/eligibility';
import { CHRONIC_CATEGORY_EXTENSION } from '../../../src/ccm/codes';
import { loadConformanceDirs } from '../../../src/validation/conformance';

const table = new ChronicCategories(loadConformanceDirs([join(__dirname, '../../../profiles')]).all('ConceptMap'));
const D = '2026-06-15';
const SCT = 'http://snomed.info/sct';
const ICD = 'http://hl7.org/fhir/sid/icd-10-cm';
const patient: Patient = { resourceType: 'Patient', id: 'p1', birthDate: '1950-01-01' };

let n = 0;
function condition(system: string, code: string, fields: Partial<Condition> = {}): Condition {
  return {
    resourceType: 'Condition',
    id: `c${++n}`,
    subject: { reference: 'Patient/p1' },
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    code: { coding: [{ system, code }] },
    ...fields,
  };
}
const diabetes = (f: Partial<Condition> = {}): Condition => condition(SCT, '44054006', f);
const hypertension = (f: Partial<Condition> = {}): Condition => condition(SCT, '38341003', f);
const clinical = (code: string): Partial<Condition> => ({ clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code }] } });
const verification = (code: string): Partial<Condition> => ({ verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code }] } });
const evaluate = (conditions: Condition[], p: Patient = patient, d = D): ReturnType<typeof evaluateEligibility> => evaluateEligibility(p, conditions, d, table);

describe('the chronic-category table (profiles/ConceptMap-chronic-category.json)', () => {
  test.each([
    [SCT, '44054006', 'diabetes'],
    [SCT, '38341003', 'hypertension'],
    [SCT, '90781000119102', 'ckd'],
    [ICD, 'E11.9', 'diabetes'],
    [ICD, 'E119', 'diabetes'],
    [ICD, 'E11.21', 'ckd'], // E112 (diabetic kidney disease) is longer than E11: the longer prefix wins
    [ICD, 'I10', 'hypertension'],
    [ICD, 'F84.0', 'autism'],
    [ICD, 'F34.1', 'depression'],
    [ICD, 'c50.911', 'cancer'],
  ])('%s %s is %s', (system, code, category) => {
    expect(table.ofCoding(system, code)).toBe(category);
  });

  test.each([
    [SCT, '15777000'], // prediabetes
    [ICD, 'R73.03'],
    [SCT, '162864005'], // obesity
    [ICD, 'E66.9'],
    [ICD, 'J32.9'], // chronic sinusitis
    [ICD, 'D50.9'], // anemia
    [ICD, 'I21.9'], // myocardial infarction (acute)
    [ICD, 'Z85.3'], // history of
    [ICD, 'F84.5'], // F84 other than F840
    ['http://example.org/other', '44054006'], // right code, wrong system
  ])('%s %s is in no category', (system, code) => {
    expect(table.ofCoding(system, code)).toBeUndefined();
  });

  test('an extension naming no known category is ignored (the code decides)', () => {
    const c = condition(SCT, '38341003', { extension: [{ url: 'http://continuum-ccm.org/fhir/StructureDefinition/chronic-category', valueCode: 'migraine' }] });
    expect(table.ofCondition(c)?.category).toBe('hypertension');
  });

  test('the chronic-category extension names the category whatever the code', () => {
    const c = condition('http://example.org/local', 'X1', { extension: [{ url: 'http://continuum-ccm.org/fhir/StructureDefinition/chronic-category', valueCode: 'copd' }] });
    expect(table.ofCondition(c)).toEqual({ category: 'copd', basis: 'chronic-category extension' });
  });
});

describe('eligibility on a date', () => {
  test('two qualifying conditions in different categories: eligible, with both categories and conditions', () => {
    const a = diabetes();
    const b = hypertension();
    const e = evaluate([a, b]);
    expect(e.eligible).toBe(true);
    expect(e.categories).toEqual(['diabetes', 'hypertension']);
    expect(e.conditions.map((c) => c.reference).sort()).toEqual([`Condition/${a.id as string}`, `Condition/${b.id as string}`].sort());
    expect(e.reason).toBeUndefined();
  });

  test('two conditions in one category count once: not eligible, and the reason says so', () => {
    const e = evaluate([diabetes(), condition(ICD, 'E11.40')]); // diabetic neuropathy: still diabetes
    expect(e.eligible).toBe(false);
    expect(e.categories).toEqual(['diabetes']);
    expect(e.conditions).toHaveLength(2);
    expect(e.reason).toMatch(/all in one category \(diabetes\)/);
  });

  test('any coding of the code may match', () => {
    const c = condition('http://example.org/local', 'X1');
    c.code?.coding?.push({ system: ICD, code: 'J44.9' });
    expect(evaluate([c, hypertension()]).eligible).toBe(true);
  });

  test('a condition in no category does not count, and the reason names it', () => {
    const pre = condition(SCT, '15777000', { code: { text: 'Prediabetes', coding: [{ system: SCT, code: '15777000' }] } });
    const e = evaluate([pre, hypertension()]);
    expect(e.eligible).toBe(false);
    expect(e.reason).toContain(`Condition/${pre.id as string}: 'Prediabetes' is not in a chronic-condition category`);
  });

  test('the chronic-category extension makes a condition qualify', () => {
    const asserted = condition('http://example.org/local', 'X1', { extension: [{ url: 'http://continuum-ccm.org/fhir/StructureDefinition/chronic-category', valueCode: 'epilepsy' }] });
    expect(evaluate([asserted, hypertension()]).categories).toEqual(['epilepsy', 'hypertension']);
  });

  describe('each clause, failing', () => {
    test('subject: a condition of another patient does not count', () => {
      const e = evaluate([diabetes({ subject: { reference: 'Patient/other' } }), hypertension()]);
      expect(e.eligible).toBe(false);
      expect(e.notCounted[0].why).toBe('its subject is not Patient/p1');
    });

    test.each(['refuted', 'entered-in-error'])('verificationStatus %s does not count', (code) => {
      const e = evaluate([diabetes(verification(code)), hypertension()]);
      expect(e.eligible).toBe(false);
      expect(e.notCounted[0].why).toBe(`it is ${code}`);
    });

    test.each(['confirmed', 'provisional', 'unconfirmed', 'differential'])('verificationStatus %s still counts', (code) => {
      expect(evaluate([diabetes(verification(code)), hypertension()]).eligible).toBe(true);
    });

    test.each(['inactive', 'remission', 'resolved'])('clinicalStatus %s does not count', (code) => {
      const e = evaluate([diabetes(clinical(code)), hypertension()]);
      expect(e.eligible).toBe(false);
      expect(e.notCounted[0].why).toBe(`it is ${code}`);
    });

    test.each(['recurrence', 'relapse'])('clinicalStatus %s counts', (code) => {
      expect(evaluate([diabetes(clinical(code)), hypertension()]).eligible).toBe(true);
    });

    test('no clinicalStatus does not count', () => {
      expect(evaluate([diabetes({ clinicalStatus: undefined }), hypertension()]).eligible).toBe(false);
    });

    test('abated before D or on D does not count; abated after D still counts', () => {
      expect(evaluate([diabetes({ abatementDateTime: '2026-06-01' }), hypertension()]).eligible).toBe(false);
      expect(evaluate([diabetes({ abatementDateTime: '2026-06-15T08:00:00Z' }), hypertension()]).eligible).toBe(false);
      expect(evaluate([diabetes({ abatementPeriod: { start: '2025-01-01' } }), hypertension()]).eligible).toBe(false);
      expect(evaluate([diabetes({ abatementString: 'resolved in childhood' }), hypertension()]).eligible).toBe(false);
      expect(evaluate([diabetes({ abatementAge: { value: 70, code: 'a', system: 'http://unitsofmeasure.org' } }), hypertension()]).eligible).toBe(false); // born 1950: 2020
      expect(evaluate([diabetes({ abatementDateTime: '2026-07-01' }), hypertension()]).eligible).toBe(true);
    });

    test('onset after D does not count; onset on or before D (or a partial date) counts', () => {
      expect(evaluate([diabetes({ onsetDateTime: '2026-06-16' }), hypertension()]).eligible).toBe(false);
      expect(evaluate([diabetes({ onsetPeriod: { start: '2027-01-01' } }), hypertension()]).eligible).toBe(false);
      expect(evaluate([diabetes({ onsetDateTime: '2026-06-15T23:00:00Z' }), hypertension()]).eligible).toBe(true);
      expect(evaluate([diabetes({ onsetDateTime: '2026' }), hypertension()]).eligible).toBe(true);
      expect(evaluate([diabetes({ onsetDateTime: '2026-06-14' }), hypertension()]).eligible).toBe(true); // diagnosed yesterday: counts
    });

    test('a patient who died on or before D is not eligible; one who dies later was', () => {
      const dead = evaluate([diabetes(), hypertension()], { ...patient, deceasedDateTime: '2026-05-01' });
      expect(dead.eligible).toBe(false);
      expect(dead.reason).toContain('The patient died on 2026-05-01.');
      expect(evaluate([diabetes(), hypertension()], { ...patient, deceasedBoolean: true }).eligible).toBe(false);
      expect(evaluate([diabetes(), hypertension()], { ...patient, deceasedDateTime: '2026-09-01' }).eligible).toBe(true);
      expect(evaluate([diabetes(), hypertension()], { ...patient, deceasedBoolean: false }).eligible).toBe(true);
    });
  });

  test('no conditions at all: not eligible, with the plain reason', () => {
    const e = evaluate([]);
    expect(e).toMatchObject({ eligible: false, categories: [], conditions: [] });
    expect(e.reason).toBe('The patient has no qualifying chronic condition on 2026-06-15; CCM needs two or more in different categories.');
  });
});

describe('the parts of a Condition and a Patient the rule reads (the month close reads only these)', () => {
  // Whole resources and their eligibility parts (as stored: through JSON) must give the same
  // answer, reasons and all, over every field the rule looks at and fields it does not.
  const statuses = [undefined, 'active', 'recurrence', 'resolved'];
  const verifications = [undefined, 'confirmed', 'refuted'];
  const onsets: Partial<Condition>[] = [{}, { onsetDateTime: '2020-03-01' }, { onsetDateTime: '2027-01-01' }, { onsetPeriod: { start: '2026-06-15T10:00:00Z' } }, { onsetAge: { value: 60, code: 'a', system: 'http://unitsofmeasure.org' } }, { onsetString: 'childhood' }];
  const abatements: Partial<Condition>[] = [{}, { abatementDateTime: '2026-01-01' }, { abatementDateTime: '2026-12' }, { abatementPeriod: { end: '2025-05-05' } }, { abatementAge: { value: 80, code: 'a' } }, { abatementString: 'gone' }, { abatementRange: { low: { value: 1 } } }];
  const codes: [string, string][] = [[SCT, '44054006'], [SCT, '38341003'], [ICD, 'J45.909'], [SCT, '22298006'], ['urn:unknown', 'x']];
  const noise: Partial<Condition> = {
    note: [{ text: 'long note '.repeat(20) }],
    evidence: [{ detail: [{ reference: 'Observation/1' }] }],
    bodySite: [{ text: 'left arm' }],
    recordedDate: '2020-01-01',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'problem-list-item' }] }],
    meta: { versionId: '3', lastUpdated: '2026-01-01T00:00:00Z' },
  };
  const conditions: Condition[] = [];
  let i = 0;
  for (const status of statuses) {
    for (const ver of verifications) {
      for (const onset of onsets) {
        for (const abatement of abatements) {
          const [system, code] = codes[i % codes.length];
          const c = condition(system, code, { ...noise, ...onset, ...abatement });
          c.clinicalStatus = status ? clinical(status).clinicalStatus : undefined;
          c.verificationStatus = ver ? verification(ver).verificationStatus : undefined;
          c.code = { text: i % 2 ? `condition ${i}` : undefined, coding: [{ system, code, display: i % 3 ? `display ${i}` : undefined, version: '2024' }] };
          if (i % 7 === 0) {
            c.extension = [{ url: 'urn:other', valueString: 'x' }, { url: CHRONIC_CATEGORY_EXTENSION, valueCode: 'diabetes' }];
          }
          if (i % 11 === 0) {
            c.subject = { reference: 'Patient/someone-else', display: 'other' };
          }
          conditions.push(c);
          i++;
        }
      }
    }
  }
  const patients: Patient[] = [
    patient,
    { ...patient, name: [{ family: 'Ng' }], address: [{ city: 'Springfield' }], deceasedDateTime: '2026-06-01T12:00:00Z' },
    { ...patient, deceasedBoolean: true, birthDate: undefined },
    { ...patient, deceasedDateTime: '2026-07-01' },
  ];
  const stored = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

  test.each(patients.map((p, k) => [k, p] as const))('patient %i: whole and partial resources give the same answer on several dates', (_k, p) => {
    for (const d of ['2026-06-15', '2026-01-01', '2027-02-01']) {
      // Several small groups (one category, two, none...) and all of them together.
      for (let start = 0; start < conditions.length; start += 9) {
        const group = conditions.slice(start, start + 9);
        expect(evaluateEligibility(stored(eligibilityPatientOf(p)), stored(group.map(eligibilityPartOf)), d, table)).toEqual(evaluateEligibility(p, group, d, table));
      }
      expect(evaluateEligibility(stored(eligibilityPatientOf(p)), stored(conditions.map(eligibilityPartOf)), d, table)).toEqual(evaluateEligibility(p, conditions, d, table));
    }
  });

  test('the matrix has eligible and ineligible groups (the comparison is not vacuous)', () => {
    const answers = new Set<boolean>();
    for (let start = 0; start < conditions.length; start += 9) {
      answers.add(evaluateEligibility(patient, conditions.slice(start, start + 9), D, table).eligible);
    }
    expect([...answers].sort()).toEqual([false, true]);
  });
});
