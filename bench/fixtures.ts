/**
 * The Patient the benchmark creates, and the stored form the bare baseline serves (the shape
 * Continuum returns for a read: id and meta first).
 */

/** The Patient's content, shared by the body the benchmark sends and the one the baseline serves. */
const PATIENT = {
  active: true,
  name: [{ use: 'official', family: 'Benchmark', given: ['Ada', 'Grace'] }],
  telecom: [{ system: 'phone', value: '555-0100', use: 'home' }],
  gender: 'female',
  birthDate: '1970-01-01',
  address: [{ line: ['1 Loopback Road'], city: 'Localhost', postalCode: '12700', country: 'US' }],
};

/** A small valid R4 Patient. `[<id>]` is replaced by a unique id per request (autocannon idReplacement). */
export const CREATE_BODY = JSON.stringify({
  resourceType: 'Patient',
  identifier: [{ system: 'urn:continuum:bench', value: '[<id>]' }],
  ...PATIENT,
});

/** A Patient as Continuum stores and serves it, for the bare Express endpoint. */
export const STORED_PATIENT_JSON = JSON.stringify({
  resourceType: 'Patient',
  id: '3f1d5a0e-9c7b-4d2e-8a61-0b5f2c9e7d43',
  meta: { versionId: '1', lastUpdated: '2025-01-01T00:00:00.000Z' },
  identifier: [{ system: 'urn:continuum:bench', value: 'bIH8Hs6fQbW0aGCw1Yt8Mw-0' }],
  ...PATIENT,
});
