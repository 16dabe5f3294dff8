-- ANALYZE samples 300 rows per unit of a table's largest statistics target, and holds each
-- sampled row whole, JSON text included, while it computes: 30,000 rows of resource_current or
-- resource_version at the default target of 100 (~40 MB for 1.3 kB Patients). PGlite's
-- WebAssembly memory never shrinks, so the embedded server kept that peak resident for good
-- (+21 MB at its first periodic ANALYZE, +33 MB by 100,000 creates). These two tables are read
-- by key, by type and by last_updated; a target of 10 (3,000 rows, ~4 MB) still gives the
-- planner their sizes, the most common types and a last_updated histogram.
ALTER TABLE resource_current ALTER COLUMN resource_type SET STATISTICS 10;
ALTER TABLE resource_current ALTER COLUMN id SET STATISTICS 10;
ALTER TABLE resource_current ALTER COLUMN version_id SET STATISTICS 10;
ALTER TABLE resource_current ALTER COLUMN last_updated SET STATISTICS 10;
ALTER TABLE resource_current ALTER COLUMN deleted SET STATISTICS 10;
ALTER TABLE resource_version ALTER COLUMN seq SET STATISTICS 10;
ALTER TABLE resource_version ALTER COLUMN resource_type SET STATISTICS 10;
ALTER TABLE resource_version ALTER COLUMN id SET STATISTICS 10;
ALTER TABLE resource_version ALTER COLUMN version_id SET STATISTICS 10;
ALTER TABLE resource_version ALTER COLUMN last_updated SET STATISTICS 10;
ALTER TABLE resource_version ALTER COLUMN deleted SET STATISTICS 10;
ALTER TABLE resource_version ALTER COLUMN method SET STATISTICS 10;
