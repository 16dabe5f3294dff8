import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../util/root';
import type { Driver } from './driver';

/** Where the SQL migrations live; applied in file-name order. */
export const MIGRATIONS_DIR = join(projectRoot(), 'src', 'store', 'postgres', 'migrations');

/**
 * Applies every migration not yet recorded in `schema_migration`, each in its own transaction under
 * an advisory lock, so that several processes starting at once against one server apply each once.
 */
export async function migrate(driver: Driver): Promise<string[]> {
  const files = readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  const applied: string[] = [];
  for (const name of files) {
    const sql = readFileSync(join(MIGRATIONS_DIR, name), 'utf8');
    await driver.transaction(async (q) => {
      await q.query('SELECT pg_advisory_xact_lock(7312001)');
      await q.exec(
        'CREATE TABLE IF NOT EXISTS schema_migration (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const done = await q.query('SELECT 1 FROM schema_migration WHERE name = $1', [name]);
      if (done.length === 0) {
        await q.exec(sql);
        await q.query('INSERT INTO schema_migration (name) VALUES ($1)', [name]);
        applied.push(name);
      }
    });
  }
  return applied;
}
