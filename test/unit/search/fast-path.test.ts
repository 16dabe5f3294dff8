import { createRegistry } from '../../../src/search/definitions';
import { evaluateFast, evaluateTyped } from '../../../src/search/fhirpath';
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

  test('declines what it cannot do alone', () => {
    expect(evaluateFast("Patient.telecom.where(system='email')", { resourceType: 'Patient' })).toBeUndefined();
    expect(evaluateFast('Patient.deceased.exists() and Patient.deceased != false', { resourceType: 'Patient' })).toBeUndefined();
    expect(evaluateFast('(Observation.value.ofType(Quantity))', { resourceType: 'Observation', valueQuantity: { value: 1 } } as never)).toEqual([
      { type: 'Quantity', value: { value: 1 }, node: undefined },
    ]);
  });
});
