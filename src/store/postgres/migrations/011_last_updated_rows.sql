-- `_lastUpdated` is searched on resource_current.last_updated (indexed with the type) since this
-- version; its index rows, one per resource, are no longer written or read.
DELETE FROM search_date WHERE code = '_lastUpdated';
