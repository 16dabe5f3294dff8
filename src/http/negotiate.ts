/**
 * Content negotiation (FHIR R4 http.html#mime-type): JSON only. Anything else asked for is a 406;
 * a body in another media type is a 415.
 */
import type { Request } from 'express';
import { FhirError } from '../errors';

export const FHIR_JSON = 'application/fhir+json';

const JSON_FORMATS = new Set(['json', 'application/json', 'application/fhir+json', 'application/json+fhir']);

/** Media types accepted in request bodies. */
export const BODY_TYPES = new Set([
  'application/fhir+json',
  'application/json',
  'application/json+fhir',
  'application/json-patch+json',
  'application/x-www-form-urlencoded',
  'application/fhir+ndjson',
  'application/ndjson',
]);

/** Checks `_format` and `Accept`; throws 406 when neither allows JSON. */
export function checkAcceptable(req: Request, format: string | undefined, extra: readonly string[] = []): void {
  if (format !== undefined) {
    if (!JSON_FORMATS.has(format.toLowerCase()) && !extra.includes(format.toLowerCase())) {
      throw new FhirError('not-acceptable', `_format '${format}' is not supported; this server speaks application/fhir+json`);
    }
    return;
  }
  const accept = req.headers.accept;
  if (!accept) {
    return;
  }
  const ok = accept.split(',').some((part) => {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q && Number(q.slice(2)) === 0) {
      return false;
    }
    return JSON_FORMATS.has(type) || extra.includes(type) || type === '*/*' || type === 'application/*' || type === 'text/html';
  });
  if (!ok) {
    throw new FhirError('not-acceptable', `Cannot produce '${accept}'; this server speaks application/fhir+json`);
  }
}

/** The body's media type (lower case, no parameters); throws 415 for types we cannot read. */
export function bodyType(req: Request): string | undefined {
  const raw = req.headers['content-type'];
  if (!raw) {
    return undefined;
  }
  const type = raw.split(';')[0].trim().toLowerCase();
  if (!BODY_TYPES.has(type)) {
    throw new FhirError('unsupported-media-type', `Content-Type '${raw}' is not supported; send application/fhir+json`);
  }
  return type;
}
