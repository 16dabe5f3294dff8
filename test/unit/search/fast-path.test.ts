import { createRegistry } from '../../../src/search/definitions';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { evaluateFast, evaluateTyped, relativeFastPath } from '../../../src/search/fhirpath';
import * as fixtures from './fixtures';

/**
 * The fast path must give exactly what the FHIRPath engine gives, for every expression it accepts,
 * on every sample resource: same values, same types, same order.
 */
describe('evaluateFast agrees with the FHIRPath engine', () => {
  const registry = createRegistry();
  const resources = (Object.values(fixtures) as unknown[]).filter(
    (v): v is { resourceType: string } => typeof v === 'object' && v !== null && typeof (v as { resourceType?: unknown }).resourceType === 'string',
  );

  test('the samples cover several types', () => {
    expect(new Set(resources.map((r) => r.resourceType)).size).toBeGreaterThanOrEqual(2);
  });

  test('on every branch of every parameter of the sample types', () => {
    let compared = 0;
    let accepted = 0;
    for (const resource of resources) {
      for (const def of registry.forType(resource.resourceType)) {
        for (const branch of def.branches) {
          const fast = evaluateFast(branch.expression, resource);
          if (fast === undefined) {
            continue;
          }
          accepted++;
          const slow = evaluateTyped(branch.expression, resource, resource);
          expect({ expr: branch.expression, got: fast.map((v) => [v.type, v.value]) }).toEqual({
            expr: branch.expression,
            got: slow.map((v) => [v.type, v.value]),
          });
          compared += slow.length;
        }
      }
    }
    expect(accepted).toBeGreaterThan(50);
    expect(compared).toBeGreaterThan(20);
  });

  test('composite components as relative paths (relativeFastPath) agree on every repetition of every branch', () => {
    let compared = 0;
    let accepted = 0;
    for (const resource of resources) {
      for (const def of registry.forType(resource.resourceType)) {
        for (const branch of def.branches) {
          for (const repetition of evaluateTyped(branch.expression, resource, resource)) {
            for (const component of def.components ?? []) {
              for (const b of component.branches) {
                const path = relativeFastPath(branch.expression, b.expression);
                if (path === undefined) {
                  continue;
                }
                accepted++;
                const slow = evaluateTyped(b.expression, repetition.node, resource);
                const label = `${branch.expression} / ${b.expression}`;
                expect({ label, got: path(repetition.value).map((v) => [v.type, v.value]) }).toEqual({ label, got: slow.map((v) => [v.type, v.value]) });
                compared += slow.length;
              }
            }
          }
        }
      }
    }
    expect(accepted).toBeGreaterThan(10);
    expect(compared).toBeGreaterThan(10);
  });

  test('relativeFastPath declines what is not a plain path', () => {
    expect(relativeFastPath('Observation.component', '%resource.code')).toBeUndefined();
    expect(relativeFastPath('Observation.component', 'value.ofType(Quantity).where(x)')).toBeUndefined();
    expect(relativeFastPath('Observation.value.ofType(Quantity)', 'value')).toBeUndefined();
    expect(relativeFastPath('Observation.component', 'code')?.({ code: { text: 'x' } })).toEqual([{ type: 'CodeableConcept', value: { text: 'x' }, node: undefined }]);
  });

  test('paths into datatypes and where(element = literal) filters agree on edge cases', () => {
    const patient = {
      resourceType: 'Patient',
      name: [{ family: 'Kim', given: ['Ada', 'Grace'] }, { _family: { extension: [{ url: 'urn:x', valueString: 'no value' }] }, given: ['Bo'] }, { use: 'old' }],
      telecom: [
        { system: 'phone', value: '555-0100' },
        { system: 'email', value: 'a@example.org' },
        { value: 'no system' },
        { _system: { extension: [{ url: 'urn:x', valueString: 'ext only' }] }, value: 'ext system' },
        { system: 'phone', value: '555-0199', use: 'work' },
      ],
      address: [{ city: 'Salem', line: ['1 Main St'], country: 'US' }, { line: ['2 Side St'] }],
      contact: [{ name: { family: 'Lee' }, telecom: [{ system: 'email', value: 'c@example.org' }] }],
    };
    const expressions = [
      'Patient.name.family',
      'Patient.name.given',
      'Patient.address.city',
      'Patient.address.line',
      'Patient.contact.name.family',
      "Patient.telecom.where(system='phone')",
      "Patient.telecom.where(system='email')",
      "Patient.telecom.where(system='fax')",
      "Patient.contact.telecom.where(system='email')",
      "Patient.name.where(given='Bo')",
      "Patient.name.where(given='Ada')",
    ];
    for (const expression of expressions) {
      const fast = evaluateFast(expression, patient);
      expect({ expression, accepted: fast !== undefined }).toEqual({ expression, accepted: true });
      const slow = evaluateTyped(expression, patient, patient);
      expect({ expression, got: fast?.map((v) => [v.type, v.value]) }).toEqual({ expression, got: slow.map((v) => [v.type, v.value]) });
    }
    // Not every expression is empty: the comparison above saw values.
    expect(evaluateFast("Patient.telecom.where(system='phone')", patient)).toHaveLength(2);
    expect(evaluateFast("Patient.name.where(given='Bo')", patient)).toHaveLength(1);
  });

  test('choice elements without ofType, and elements of the type ofType selects, agree on every form', () => {
    const forms: Record<string, unknown>[] = [
      {},
      { effectiveDateTime: '2020-01-02T03:04:05Z' },
      { effectivePeriod: { start: '2020', end: '2021' } },
      { effectiveInstant: '2020-01-02T03:04:05.123Z' },
      { effectiveTiming: { event: ['2020-01-01'] } },
      // Only an extension on the first type present: the engine takes that type and finds no value.
      { _effectiveDateTime: { extension: [{ url: 'urn:x', valueString: 'x' }] }, effectivePeriod: { start: '2020' } },
      { effectiveDateTime: '2020', _effectiveDateTime: { id: 'd' } },
      { valueCodeableConcept: { text: 'High', coding: [{ code: 'H' }] } },
      { valueCodeableConcept: { coding: [{ code: 'H' }] } },
      { valueString: 'text, not a concept' },
      { valueQuantity: { value: 1, unit: 'mg' } },
    ];
    const expressions = ['Observation.effective', '(Observation.value.ofType(CodeableConcept)).text', 'Observation.value.ofType(CodeableConcept).coding', 'Observation.value', 'Observation.component.value'];
    let values = 0;
    for (const form of forms) {
      const observation = { resourceType: 'Observation', status: 'final', code: { text: 'x' }, component: [{ code: { text: 'c' }, ...form }], ...form };
      for (const expression of expressions) {
        const fast = evaluateFast(expression, observation);
        expect({ expression, accepted: fast !== undefined }).toEqual({ expression, accepted: true });
        const slow = evaluateTyped(expression, observation, observation);
        expect({ form, expression, got: fast?.map((v) => [v.type, v.value]) }).toEqual({ form, expression, got: slow.map((v) => [v.type, v.value]) });
        values += slow.length;
      }
    }
    expect(values).toBeGreaterThan(15);
    expect(evaluateFast('Observation.effective', { resourceType: 'Observation', effectivePeriod: { start: '2020' } } as never)).toEqual([{ type: 'Period', value: { start: '2020' }, node: undefined }]);
  });

  test('`deceased` (exists() and != false) agrees with the engine on every form of the element', () => {
    const deceased = 'Patient.deceased.exists() and Patient.deceased != false';
    const forms = [{}, { deceasedBoolean: false }, { deceasedBoolean: true }, { deceasedDateTime: '2015-02-14T13:42:00+10:00' }, { deceasedDateTime: '2015' }];
    const got = forms.map((f) => {
      const patient = { resourceType: 'Patient', ...f };
      const fast = evaluateFast(deceased, patient);
      expect({ f, fast: fast?.map((v) => [v.type, v.value]) }).toEqual({ f, fast: evaluateTyped(deceased, patient, patient).map((v) => [v.type, v.value]) });
      return fast?.[0]?.value;
    });
    expect(got).toEqual([false, false, true, true, true]);
  });

  test('on every branch it accepts, over all the official R4 examples', () => {
    const dir = dirname(require.resolve('hl7.fhir.r4.examples/package.json'));
    let accepted = 0;
    let values = 0;
    const disagreements: string[] = [];
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'package.json')) {
      const resource = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { resourceType?: unknown };
      if (typeof resource.resourceType !== 'string') {
        continue;
      }
      for (const def of registry.forType(resource.resourceType)) {
        for (const branch of def.branches) {
          const fast = evaluateFast(branch.expression, resource as { resourceType: string });
          if (fast === undefined) {
            continue;
          }
          accepted++;
          let slow;
          try {
            slow = evaluateTyped(branch.expression, resource, resource);
          } catch {
            continue; // the engine fails where the fast path does not: extraction would skip it anyway
          }
          values += slow.length;
          const a = JSON.stringify(fast.map((v) => [v.type, v.value]));
          const b = JSON.stringify(slow.map((v) => [v.type, v.value]));
          if (a !== b) {
            disagreements.push(`${file} ${branch.expression}: fast ${a.slice(0, 200)} engine ${b.slice(0, 200)}`);
          }
        }
      }
    }
    expect(disagreements.slice(0, 10)).toEqual([]);
    expect(accepted).toBeGreaterThan(50_000);
    expect(values).toBeGreaterThan(10_000);
  }, 120_000);

  test('declines what it cannot do alone', () => {
    expect(evaluateFast("Patient.telecom.where(system='email' or system='phone')", { resourceType: 'Patient' })).toBeUndefined();
    expect(evaluateFast("Patient.telecom.where(period='x')", { resourceType: 'Patient' })).toBeUndefined();
    const deceased = 'Patient.deceased.exists() and Patient.deceased != false';
    expect(evaluateFast(deceased, { resourceType: 'Patient', _deceasedBoolean: { extension: [{ url: 'urn:x', valueString: 'x' }] } } as never)).toBeUndefined();
    expect(evaluateFast(deceased, { resourceType: 'Patient', deceasedBoolean: false, deceasedDateTime: '2015' } as never)).toBeUndefined();
    expect(evaluateFast(deceased, { resourceType: 'Observation' })).toBeUndefined();
    expect(evaluateFast('(Observation.value.ofType(Quantity))', { resourceType: 'Observation', valueQuantity: { value: 1 } } as never)).toEqual([
      { type: 'Quantity', value: { value: 1 }, node: undefined },
    ]);
  });
});
