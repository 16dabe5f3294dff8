-- ANALYZE gathers no statistics for columns no query filters, joins or sorts on: the resources'
-- JSON text and a composite row's components (read with ->> expressions, which the planner
-- estimates without column statistics). Those two were ~20 % of an ANALYZE after the Synthea
-- import (the composite's jsonb alone 85 of 100 ms for its table), and `continuum import` and the
-- embedded store (every 20,000 writes) run ANALYZE.
ALTER TABLE resource_current ALTER COLUMN content SET STATISTICS 0;
ALTER TABLE resource_version ALTER COLUMN content SET STATISTICS 0;
ALTER TABLE search_composite ALTER COLUMN components SET STATISTICS 0;
