/**
 * The search benchmark's dataset: `patients` Patients and `observations` Observations, generated
 * deterministically (same sizes, same files) as transaction Bundles for `continuum import`. Ids are
 * the server's: the benchmark finds each patient's by its name after the import.
 *
 * - Patient p: a unique six-letter family name (so no name is a prefix of another, and no
 *   given name, all five letters or fewer, starts with one), gender `female` for all (the query
 *   that matches every patient), one of a few cities, a birth date.
 * - Observation j: observation j belongs to patient j % patients, round k = floor(j /
 *   patients) picks the code (CODES[k % CODES.length]) and the date (a week per round), so the
 *   matches of `subject=Patient/x&code=c` are known without reading the files. Each bundle holds a
 *   block of patients and all their observations, which reference them by urn:uuid.
 *
 * Files are written one entry at a time (a bundle never sits in memory whole).
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const LOINC = 'http://loinc.org';

interface ObsCode {
  code: string;
  display: string;
  unit?: string;
  /** Value for patient p in round k. */
  value?: (p: number, k: number) => number;
}

/** Five vital-sign codes; 85354-9 (blood pressure panel) carries components instead of a value. */
export const CODES: readonly ObsCode[] = [
  { code: '85354-9', display: 'Blood pressure panel with all children optional' },
  { code: '29463-7', display: 'Body weight', unit: 'kg', value: (p, k) => 50 + ((p * 7 + k) % 60) + 0.5 },
  { code: '8867-4', display: 'Heart rate', unit: '/min', value: (p, k) => 55 + ((p * 3 + k * 5) % 50) },
  { code: '8302-2', display: 'Body height', unit: 'cm', value: (p) => 150 + (p % 40) },
  { code: '2339-0', display: 'Glucose [Mass/volume] in Blood', unit: 'mg/dL', value: (p, k) => 70 + ((p * 11 + k * 3) % 90) },
];

/** The code the `search-obs` and `search-chain` cases query. */
export const QUERY_CODE = '85354-9';

const GIVEN = ['Ada', 'Grace', 'Maria', 'Emma', 'Olga', 'Alice', 'Rosa', 'Clara', 'Ines', 'Lena', 'Nora', 'Ruth', 'Vera', 'Zoe', 'Ida', 'Eva', 'Mia', 'Lea', 'Amy', 'June'];
const CITIES = ['Springfield', 'Riverton', 'Fairview', 'Greenville', 'Madison', 'Salem', 'Clinton', 'Georgetown'];
const FAMILY_SPACE = 26 ** 6;


/** A unique six-letter family name: p -> (p * 48271 + 7) mod 26^6 is one-to-one for p < 26^6. */
export function familyName(p: number): string {
  let x = (p * 48271 + 7) % FAMILY_SPACE;
  let s = '';
  for (let i = 0; i < 6; i++) {
    s = String.fromCharCode(97 + (x % 26)) + s;
    x = Math.floor(x / 26);
  }
  return s[0].toUpperCase() + s.slice(1);
}

const BASE_MS = Date.UTC(2018, 0, 1, 8, 0, 0);
const WEEK_MS = 7 * 24 * 3600 * 1000;

/** effectiveDateTime of observation round k for patient p: a week per round, minutes apart per patient. */
export function effective(p: number, k: number): string {
  return new Date(BASE_MS + k * WEEK_MS + (p % 600) * 60_000).toISOString().replace('.000Z', 'Z');
}

export interface SearchDataset {
  dir: string;
  patients: number;
  observations: number;
  files: number;
  resources: number;
}

/** effectiveDateTime of patient p's observations with the code at index `codeIndex`, newest first. */
export function observationDates(d: { patients: number; observations: number }, p: number, codeIndex: number): string[] {
  const out: string[] = [];
  for (let k = 0; p + k * d.patients < d.observations; k++) {
    if (k % CODES.length === codeIndex) {
      out.push(effective(p, k));
    }
  }
  return out.reverse();
}

function patient(p: number): unknown {
  return {
    resourceType: 'Patient',
    identifier: [{ system: 'urn:continuum:bench:search', value: `MRN${String(p).padStart(7, '0')}` }],
    active: true,
    name: [{ use: 'official', family: familyName(p), given: [GIVEN[p % GIVEN.length], GIVEN[(p * 7 + 3) % GIVEN.length]] }],
    gender: 'female',
    birthDate: new Date(Date.UTC(1940 + (p % 60), p % 12, 1 + (p % 28))).toISOString().slice(0, 10),
    address: [{ line: [`${1 + (p % 999)} Main Street`], city: CITIES[p % CITIES.length], postalCode: String(10000 + (p % 89999)), country: 'US' }],
  };
}

function quantity(value: number, unit: string): unknown {
  return { value, unit, system: 'http://unitsofmeasure.org', code: unit };
}

function observation(j: number, patients: number, subject: string): unknown {
  const p = j % patients;
  const k = Math.floor(j / patients);
  const c = CODES[k % CODES.length];
  const obs: Record<string, unknown> = {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs', display: 'Vital Signs' }] }],
    code: { coding: [{ system: LOINC, code: c.code, display: c.display }], text: c.display },
    subject: { reference: subject },
    effectiveDateTime: effective(p, k),
  };
  if (c.value && c.unit) {
    obs.valueQuantity = quantity(c.value(p, k), c.unit);
  } else {
    obs.component = [
      { code: { coding: [{ system: LOINC, code: '8480-6', display: 'Systolic blood pressure' }] }, valueQuantity: quantity(100 + ((p + k * 3) % 60), 'mm[Hg]') },
      { code: { coding: [{ system: LOINC, code: '8462-4', display: 'Diastolic blood pressure' }] }, valueQuantity: quantity(60 + ((p * 5 + k) % 40), 'mm[Hg]') },
    ];
  }
  return obs;
}

/** A fixed urn:uuid per patient, for the references inside its bundle. */
const patientUrn = (p: number): string => `urn:uuid:00000000-0000-4000-8000-${p.toString(16).padStart(12, '0')}`;

/**
 * Writes transaction Bundles of POST entries (server-assigned ids; a PUT per entry imports about
 * three times slower), each holding `patientsPerBundle` patients and all their observations, which
 * reference the patient by its urn:uuid fullUrl.
 */
export function generateSearchDataset(dir: string, patients: number, observations: number, patientsPerBundle = 50): SearchDataset {
  mkdirSync(dir, { recursive: true });
  let files = 0;
  for (let start = 0; start < patients; start += patientsPerBundle) {
    const fd = openSync(join(dir, `bundle-${String(files++).padStart(5, '0')}.json`), 'w');
    try {
      writeSync(fd, '{"resourceType":"Bundle","type":"transaction","entry":[');
      let chunk = '';
      let first = true;
      const add = (fullUrl: string | undefined, resource: { resourceType: string }): void => {
        chunk += `${first ? '' : ','}{${fullUrl ? `"fullUrl":"${fullUrl}",` : ''}"resource":${JSON.stringify(resource)},"request":{"method":"POST","url":"${resource.resourceType}"}}`;
        first = false;
        if (chunk.length > 1 << 16) {
          writeSync(fd, chunk);
          chunk = '';
        }
      };
      const end = Math.min(start + patientsPerBundle, patients);
      for (let p = start; p < end; p++) {
        add(patientUrn(p), patient(p) as { resourceType: string });
      }
      for (let p = start; p < end; p++) {
        for (let j = p; j < observations; j += patients) {
          add(undefined, observation(j, patients, patientUrn(p)) as { resourceType: string });
        }
      }
      writeSync(fd, chunk + ']}\n');
    } finally {
      closeSync(fd);
    }
  }
  return { dir, patients, observations, files, resources: patients + observations };
}
