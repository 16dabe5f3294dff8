/**
 * The CCM issue's proof on realistic data: load the 50 Synthea patients of ../shared/data/synthea
 * into a fresh store with the eligibility bot deployed, let the bot work through every write, and
 * compare its stored determination with `$ccm-eligibility` computed on demand, patient by patient.
 * Prints the number of eligible patients and the categories found (README, "CCM eligibility").
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Bundle, Observation, Parameters, Patient } from '@medplum/fhirtypes';
import { deployBot } from '../../../src/bots/deploy';
import { importPaths } from '../../../src/import/importer';
import { startTestServer, type TestServer } from '../../support/server';

jest.setTimeout(600_000);

const SYNTHEA = join(__dirname, '..', '..', '..', '..', 'shared', 'data', 'synthea');
const haveSynthea = existsSync(SYNTHEA) && readdirSync(SYNTHEA).some((f) => /\.json(\.gz)?$/.test(f));
const NOW = new Date('2026-12-02T12:00:00Z');

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ now: () => NOW });
  await deployBot(join(__dirname, '../../../bots/ccm-eligibility'), 'ccm-eligibility', server.continuum.bots);
});
afterAll(() => server.close());

(haveSynthea ? test : test.skip)('the stored determination of every Synthea patient equals $ccm-eligibility on demand', async () => {
  const loaded = await importPaths([SYNTHEA], server.continuum.context(), { progress: null });
  expect({ failed: loaded.failed, errors: loaded.errors }).toEqual({ failed: 0, errors: [] });
  await server.continuum.bots.idle();

  const patients: Patient[] = [];
  let page = (await server.request().get('/Patient?_count=100&_elements=id,deceased')).body as Bundle<Patient>;
  patients.push(...(page.entry ?? []).map((e) => e.resource as Patient));
  while (page.link?.find((l) => l.relation === 'next')) {
    const next = page.link.find((l) => l.relation === 'next')?.url as string;
    page = (await server.request().get(next.replace(/^https?:\/\/[^/]+/, ''))).body as Bundle<Patient>;
    patients.push(...(page.entry ?? []).map((e) => e.resource as Patient));
  }
  expect(patients).toHaveLength(50);

  const categories = new Map<string, number>();
  let eligible = 0;
  const mismatches: string[] = [];
  for (const p of patients) {
    const id = p.id as string;
    const onDemand = (await server.request().get(`/Patient/${id}/$ccm-eligibility`)).body as Parameters;
    const stored = await server.request().get(`/Observation/ccm-eligibility-${id}`);
    const demandVerdict = onDemand.parameter?.find((x) => x.name === 'eligible')?.valueBoolean ? 'eligible' : 'not-eligible';
    const demandCategories = (onDemand.parameter ?? []).filter((x) => x.name === 'category').map((x) => x.valueCode);
    const demandConditions = (onDemand.parameter ?? []).filter((x) => x.name === 'condition').map((x) => x.valueReference?.reference).sort();
    if (stored.status !== 200) {
      // Only a patient with no Condition at all was never evaluated by the bot: then on demand says no.
      const conditions = (await server.request().get(`/Condition?subject=Patient/${id}&_summary=count`)).body.total;
      expect({ id, conditions, demandVerdict }).toEqual({ id, conditions: 0, demandVerdict: 'not-eligible' });
      continue;
    }
    const o = stored.body as Observation;
    const storedVerdict = o.valueCodeableConcept?.coding?.[0]?.code;
    const storedCategories = (o.component ?? []).map((c) => c.valueCodeableConcept?.coding?.[0]?.code);
    const storedConditions = (o.derivedFrom ?? []).map((r) => r.reference).sort();
    if (storedVerdict !== demandVerdict || JSON.stringify(storedCategories) !== JSON.stringify(demandCategories) || JSON.stringify(storedConditions) !== JSON.stringify(demandConditions)) {
      mismatches.push(`Patient/${id}: stored ${storedVerdict} ${storedCategories.join(',')} vs on demand ${demandVerdict} ${demandCategories.join(',')}`);
    }
    if (demandVerdict === 'eligible') {
      eligible++;
      demandCategories.forEach((c) => categories.set(c as string, (categories.get(c as string) ?? 0) + 1));
    }
  }
  expect(mismatches).toEqual([]);
  const summary = [...categories.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([c, n]) => `${c} ${n}`).join(', ');
  console.log(`Synthea (${loaded.resources} resources, 50 patients) on ${NOW.toISOString().slice(0, 10)}: ${eligible} CCM-eligible; categories among them: ${summary}`);
  // The data has chronic patients: the rule finds some, and not everyone.
  expect(eligible).toBeGreaterThan(0);
  expect(eligible).toBeLessThan(50);

  // The system-level operation agrees with the per-patient answers.
  const all = (await server.request().get('/$ccm-eligibility')).body as Parameters;
  expect(all.parameter?.find((x) => x.name === 'evaluated')?.valueInteger).toBe(50);
  expect(all.parameter?.find((x) => x.name === 'eligibleCount')?.valueInteger).toBe(eligible);
});
