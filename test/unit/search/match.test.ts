import { matchFilter } from '../../../src/search/match';
import { emptyRows, type IndexRows } from '../../../src/search/extract/rows';
import type { SearchFilter } from '../../../src/store/api';

const resource = { resourceType: 'Observation', id: 'o1' };
const rows: IndexRows = {
  ...emptyRows(),
  token: [{ code: 'code', system: 'http://loinc.org', value: '8867-4', text: 'heart rate', typeSystem: null, typeCode: null }],
  reference: [{ code: 'subject', targetType: 'Patient', targetId: 'p1', version: null, url: null, identifierSystem: null, identifierValue: null }],
};
const yes: SearchFilter = { kind: 'token', code: 'code', values: [{ system: 'http://loinc.org', value: '8867-4' }] };
const no: SearchFilter = { kind: 'reference', code: 'subject', values: [{ targetType: 'Patient', targetId: 'p2' }] };
const unknown: SearchFilter = { kind: 'date', code: 'date', values: [] };

describe('in-memory filter matching', () => {
  test.each([
    ['token match', yes, true],
    ['reference mismatch', no, false],
    ['id', { kind: 'id', ids: ['o1'] } as SearchFilter, true],
    ['type', { kind: 'type', types: ['Condition'] } as SearchFilter, false],
    [':missing=true on a present parameter', { kind: 'missing', table: 'token', code: 'code', missing: true } as SearchFilter, false],
    ['a date filter cannot be decided', unknown, undefined],
    ['not(unknown) stays unknown', { kind: 'not', filter: unknown } as SearchFilter, undefined],
    ['and: one false decides', { kind: 'and', filters: [unknown, no] } as SearchFilter, false],
    ['and: true with unknown is unknown', { kind: 'and', filters: [yes, unknown] } as SearchFilter, undefined],
    ['and: all true', { kind: 'and', filters: [yes, { kind: 'not', filter: no }] } as SearchFilter, true],
    ['or: one true decides', { kind: 'or', filters: [unknown, yes] } as SearchFilter, true],
    ['or: false with unknown is unknown', { kind: 'or', filters: [no, unknown] } as SearchFilter, undefined],
    ['or: empty is false', { kind: 'or', filters: [] } as SearchFilter, false],
  ])('%s', (_label, filter, expected) => {
    expect(matchFilter(filter, resource, rows)).toBe(expected);
  });
});
