-- The planner assumes columns are independent, so it estimated `code = 'gender' AND value =
-- 'female'` (10,000 rows) as 2 rows and chose plans that sort every match for each page.
-- Statistics on the columns searched together fix the estimates.
CREATE STATISTICS search_token_stats (dependencies, mcv) ON resource_type, code, value FROM search_token;
CREATE STATISTICS search_string_stats (dependencies, mcv) ON resource_type, code, normalized FROM search_string;
CREATE STATISTICS search_reference_stats (dependencies, mcv) ON resource_type, code, target_type FROM search_reference;
CREATE STATISTICS search_date_stats (dependencies) ON resource_type, code FROM search_date;
