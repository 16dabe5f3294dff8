/**
 * A batch or transaction Bundle's entries are promise-only work: without a pause the loop never
 * returns to the event loop, so other requests (and the PGlite thread's answers) wait for the whole
 * Bundle. The loops breathe every few milliseconds (util/breathe.ts, breather): event-loop turns
 * happen between entries, and every entry is still written.
 */
import type { Bundle } from '@medplum/fhirtypes';
import { batchOrTransaction } from '../../src/fhir/interactions/batch';
import { handle } from '../../src/fhir/router';
import type { FhirRequest, RequestContext } from '../../src/fhir/types';
import { type Continuum, createContinuum } from '../../src/server';
import { freshSchema, usingPostgres } from '../support/server';

jest.setTimeout(60_000);

const ENTRIES = 120;

/** Holds the thread for `ms` (an entry's validation and indexing, exaggerated). */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

describe('batch and transaction Bundles let the event loop run between entries', () => {
  let continuum: Continuum;
  let ctx: RequestContext;
  let drop = (): Promise<void> => Promise.resolve();

  beforeAll(async () => {
    if (usingPostgres()) {
      const s = await freshSchema();
      drop = s.drop;
      continuum = await createContinuum({ databaseUrl: s.url, seedConformance: false });
    } else {
      continuum = await createContinuum({ memory: true, seedConformance: false });
    }
    ctx = continuum.context();
  });

  afterAll(async () => {
    await continuum.close();
    await drop();
  });

  // A transaction's creates are queued (no I/O until the end). A batch's entries are each their own
  // write, which awaits the store; entries that fail validation never reach it, so a batch of
  // those is promise-only work too.
  const cases = [
    { type: 'transaction', gender: 'female', status: '201' },
    { type: 'batch', gender: 42, status: '400' },
  ] as const;
  for (const { type, gender, status } of cases) {
    test(`${type}: event-loop turns happen while the entries run`, async () => {
      let turns = 0;
      let running = true;
      const tick = (): void => {
        turns++;
        if (running) {
          setImmediate(tick);
        }
      };
      setImmediate(tick);
      const seen: number[] = [];
      const dispatch = (r: FhirRequest, c: RequestContext) => {
        seen.push(turns);
        busy(1);
        return handle(r, c);
      };
      const req: FhirRequest = {
        method: 'POST',
        path: '',
        query: {},
        contentType: 'application/fhir+json',
        body: {
          resourceType: 'Bundle',
          type,
          entry: Array.from({ length: ENTRIES }, (_, i) => ({
            request: { method: 'POST', url: 'Patient' },
            resource: { resourceType: 'Patient', gender, identifier: [{ system: 'urn:breathe', value: `${type}-${i}` }] },
          })),
        },
      };
      // Enter the loop from a fresh turn, as a request does.
      await new Promise((resolve) => setImmediate(resolve));
      const res = await batchOrTransaction(req, ctx, dispatch);
      running = false;
      expect(res.status).toBe(200);
      expect(((res.resource as Bundle).entry ?? []).map((e) => e.response?.status)).toEqual(Array(ENTRIES).fill(status));
      expect(seen).toHaveLength(ENTRIES);
      // ~120 ms of entries with a pause every ~5 ms: the event loop turned many times between the
      // first entry and the last (without pauses it does not turn at all: tested).
      expect(seen[ENTRIES - 1] - seen[0]).toBeGreaterThanOrEqual(5);
      const found = await handle({ method: 'GET', path: 'Patient', query: { identifier: [`urn:breathe|${type}-${ENTRIES - 1}`] } }, ctx);
      // A searchset is served as text assembled around the stored JSON.
      expect((JSON.parse(found.json ?? JSON.stringify(found.resource)) as Bundle).total).toBe(status === '201' ? 1 : 0);
    });
  }
});
