/**
 * Building Bundles: links with the parameters actually applied, entries from stored versions.
 */
import type { Bundle, BundleEntry, BundleLink } from '@medplum/fhirtypes';
import type { StoredVersion } from '../store/api';

/** `base/path?query` with the given parameters (in the order given). */
export function pageUrl(baseUrl: string, path: string, params: [string, string][]): string {
  const qs = params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `${baseUrl}/${path}${qs ? '?' + qs : ''}`;
}

export function links(entries: [BundleLink['relation'], string | undefined][]): BundleLink[] {
  return entries.filter((e): e is [string, string] => e[1] !== undefined).map(([relation, url]) => ({ relation, url }));
}

/**
 * A history entry as R4 describes it (http.html#history): the resource (absent for a delete), the
 * request that made the version and the response it got.
 */
export function historyEntry(baseUrl: string, v: StoredVersion): BundleEntry {
  const url = `${v.resourceType}/${v.id}`;
  const entry: BundleEntry = { fullUrl: `${baseUrl}/${url}` };
  if (!v.deleted && v.json) {
    entry.resource = JSON.parse(v.json);
  }
  const method = v.method ?? (v.deleted ? 'DELETE' : 'PUT');
  entry.request = { method, url: method === 'POST' ? v.resourceType : url };
  entry.response = {
    status: v.deleted ? '204' : method === 'POST' ? '201' : '200',
    etag: `W/"${v.versionId}"`,
    lastModified: v.lastUpdated,
  };
  return entry;
}

export function bundle(type: Bundle['type'], fields: Partial<Bundle>): Bundle {
  return { resourceType: 'Bundle', type, ...fields };
}
