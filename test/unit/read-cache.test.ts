import type { StoredVersion } from '../../src/store/api';
import { ReadCache } from '../../src/store/postgres/read-cache';

const v = (versionId: string): StoredVersion => ({ resourceType: 'Patient', id: 'p', versionId, lastUpdated: '2026-01-01T00:00:00.000Z', deleted: false, method: 'PUT', json: '{}' });

describe('ReadCache', () => {
  test('returns what was set, until invalidated', () => {
    const c = new ReadCache();
    c.set('Patient/p', v('1'), c.epoch);
    expect(c.get('Patient/p')?.versionId).toBe('1');
    c.invalidate(['Patient/p']);
    expect(c.get('Patient/p')).toBeUndefined();
  });

  test('a read that overlapped a write does not cache its (possibly old) result', () => {
    const c = new ReadCache();
    const epochAtReadStart = c.epoch;
    c.invalidate(['Patient/p']); // a write committed while the read ran
    c.set('Patient/p', v('1'), epochAtReadStart);
    expect(c.get('Patient/p')).toBeUndefined();
  });

  test('is bounded, dropping the oldest entries', () => {
    const c = new ReadCache(2);
    c.set('a', v('1'), c.epoch);
    c.set('b', v('1'), c.epoch);
    c.set('c', v('1'), c.epoch);
    expect(c.get('a')).toBeUndefined();
    expect(c.get('b')?.versionId).toBe('1');
    expect(c.get('c')?.versionId).toBe('1');
  });
});
