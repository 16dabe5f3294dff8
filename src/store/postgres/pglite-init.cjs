'use strict';
/*
 * Creates an embedded store's data directory (PostgreSQL's initdb, through PGlite) and exits: run
 * as a child process by pglite-thread.ts before the serving thread opens a fresh directory.
 * Argument: JSON { dataDir, startParams }. Exit code 0 when the directory is ready; otherwise the
 * error's message on stderr and exit code 1.
 */
const { PGlite } = require('@electric-sql/pglite');

async function main() {
  const { dataDir, startParams } = JSON.parse(process.argv[2]);
  const db = await PGlite.create({ dataDir, relaxedDurability: false, startParams: [...PGlite.defaultStartParams, ...startParams] });
  await db.close();
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(String(err && err.message ? err.message : err));
    process.exit(1);
  },
);
