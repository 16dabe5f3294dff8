/** Bots and triggers as FHIR resources, for tests that deploy them through the API. */
import type { Library, Subscription } from '@medplum/fhirtypes';
import { BOT_EXT } from '../../src/bots/definition';

/** A bot Library from one file of TypeScript source. */
export function botLibrary(id: string, source: string, scope = 'system/*.cruds', extra: Library['extension'] = []): Library {
  return {
    resourceType: 'Library',
    id,
    name: id,
    status: 'active',
    type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/library-type', code: 'logic-library' }] },
    extension: [{ url: BOT_EXT.scope, valueString: scope }, ...(extra ?? [])],
    content: [{ contentType: 'text/typescript', data: Buffer.from(source).toString('base64') }],
  };
}

/** A post-commit (or, with extensions, other) trigger of the bot `Library/{bot}`. */
export function botTrigger(id: string, bot: string, criteria: string, ext: Subscription['extension'] = []): Subscription {
  return { resourceType: 'Subscription', id, status: 'active', reason: 'test', criteria, channel: { type: 'message', endpoint: `Library/${bot}` }, extension: ext };
}
