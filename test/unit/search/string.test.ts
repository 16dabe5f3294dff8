import { normalizeString } from '../../../src/search/extract';
import { patient } from './fixtures';
import { extract, rowsOf } from './helpers';

describe('normalizeString: case- and accent-insensitive', () => {
  test.each([
    ['Chalmers', 'chalmers'],
    ['Müller', 'muller'],
    ['Ångström', 'angstrom'],
    ['ZOË', 'zoe'],
    ['François', 'francois'],
    ['Dvořák', 'dvorak'],
    ['José María', 'jose maria'],
    ['Łukasz', 'łukasz'], // Ł has no decomposition: only lower-cased
    ['Straße', 'straße'], // no case folding beyond lower case
    ['e\u0301clair', 'eclair'], // already decomposed
    ['Ελληνικά', 'ελληνικα'],
    ['  Jean   Paul\t', 'jean paul'],
    ['', ''],
  ])('%j -> %j', (input, normalized) => {
    expect(normalizeString(input)).toBe(normalized);
  });
});

describe('string parameters', () => {
  const rows = extract(patient);

  test('HumanName: family, given, prefix, suffix and text are each searchable under name', () => {
    expect(rowsOf(rows, 'string', 'name')).toEqual([
      { value: 'Chalmers', normalized: 'chalmers' },
      { value: 'Peter', normalized: 'peter' },
      { value: 'James', normalized: 'james' },
      { value: 'Jim', normalized: 'jim' },
      { value: 'Müller-Ångström', normalized: 'muller-angstrom' },
      { value: 'Zoë', normalized: 'zoe' },
      { value: 'Renée', normalized: 'renee' },
      { value: 'Dr.', normalized: 'dr.' },
    ]);
  });

  test('family and given are their own parameters; duplicates are removed', () => {
    expect(rowsOf(rows, 'string', 'family').map((r) => r.normalized)).toEqual(['chalmers', 'muller-angstrom']);
    expect(rowsOf(rows, 'string', 'given').map((r) => r.normalized)).toEqual(['peter', 'james', 'jim', 'zoe', 'renee']);
  });

  test('Address: every part under address, and the part parameters', () => {
    expect(rowsOf(rows, 'string', 'address').map((r) => r.value)).toEqual([
      '534 Erewhon St',
      'PleasantVille',
      'Rainbow',
      'Vic',
      '3999',
      'AU',
      '534 Erewhon St PeasantVille, Rainbow, Vic  3999',
    ]);
    expect(rowsOf(rows, 'string', 'address-city')).toEqual([{ value: 'PleasantVille', normalized: 'pleasantville' }]);
    expect(rowsOf(rows, 'string', 'address-postalcode')).toEqual([{ value: '3999', normalized: '3999' }]);
  });

  test('plain string and markdown elements', () => {
    const r = extract({
      resourceType: 'Organization',
      name: 'Hôpital Saint-Éloi',
      alias: ['CHU Montpellier'],
    });
    expect(rowsOf(r, 'string', 'name')).toEqual([
      { value: 'Hôpital Saint-Éloi', normalized: 'hopital saint-eloi' },
      { value: 'CHU Montpellier', normalized: 'chu montpellier' },
    ]);
    const q = extract({ resourceType: 'Questionnaire', status: 'active', description: 'PHQ-9 **depression** screen' });
    expect(rowsOf(q, 'string', 'description')).toEqual([{ value: 'PHQ-9 **depression** screen', normalized: 'phq-9 **depression** screen' }]);
  });

  test('an element without a value, or an empty string, gives no row', () => {
    const r = extract({ resourceType: 'Patient', name: [{ family: '', _family: { extension: [{ url: 'http://x', valueCode: 'masked' }] } }] });
    expect(rowsOf(r, 'string', 'family')).toEqual([]);
    expect(rowsOf(r, 'string', 'name')).toEqual([]);
  });
});
