/**
 * The embedded store's buffer pool: 16 MB unless CONTINUUM_SHARED_BUFFERS says otherwise, and a
 * malformed value is refused by name before PostgreSQL sees it. Its WAL and statistics settings (pglite.ts).
 */
import { sharedBuffersFromEnv } from '../../src/store/open';
import { openPglite } from '../../src/store/postgres/pglite';

const saved = process.env.CONTINUUM_SHARED_BUFFERS;
afterEach(() => {
  if (saved === undefined) {
    delete process.env.CONTINUUM_SHARED_BUFFERS;
  } else {
    process.env.CONTINUUM_SHARED_BUFFERS = saved;
  }
});

test('PostgreSQL runs with the default pool, or the size asked for', async () => {
  for (const [asked, shown] of [[undefined, '16MB'], ['24MB', '24MB']] as const) {
    const db = await openPglite(undefined, { thread: true, sharedBuffers: asked });
    try {
      const rows = await db.query<{ shared_buffers: string }>('SHOW shared_buffers');
      expect(rows[0].shared_buffers).toBe(shown);
      // New WAL segments are not zero-filled first (pglite.ts WAL_SETTINGS).
      expect(await db.query('SHOW wal_init_zero')).toEqual([{ wal_init_zero: 'off' }]);
      // Smaller ANALYZE samples (pglite.ts STATISTICS_SETTINGS).
      expect(await db.query('SHOW default_statistics_target')).toEqual([{ default_statistics_target: '30' }]);
    } finally {
      await db.close();
    }
  }
}, 60_000);

test('CONTINUUM_SHARED_BUFFERS: a size is taken as given; anything else is refused by name', () => {
  delete process.env.CONTINUUM_SHARED_BUFFERS;
  expect(sharedBuffersFromEnv()).toBeUndefined();
  process.env.CONTINUUM_SHARED_BUFFERS = '8192kB';
  expect(sharedBuffersFromEnv()).toBe('8192kB');
  for (const bad of ['16', '16mb', '0MB', '16MB; DROP TABLE x', '-1MB']) {
    process.env.CONTINUUM_SHARED_BUFFERS = bad;
    expect(() => sharedBuffersFromEnv()).toThrow(`CONTINUUM_SHARED_BUFFERS must be a size such as 16MB or 8192kB, got '${bad}'`);
  }
});
