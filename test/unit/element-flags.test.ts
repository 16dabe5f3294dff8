import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { computeElementFlags, loadDefinitionBundles } from '../../src/validation/element-flags.generate';

describe('element-flags.json', () => {
  test('is what the generator makes from the installed R4 definitions (run `npm run generate` if not)', () => {
    const committed = JSON.parse(readFileSync(join(__dirname, '../../src/validation/element-flags.json'), 'utf8'));
    expect(committed).toEqual(computeElementFlags(loadDefinitionBundles()));
  });

  test('records primitives as x or _x, choices as every x[Type] form', () => {
    const flags = computeElementFlags(loadDefinitionBundles());
    expect(flags.required.Observation).toContainEqual(['status', '_status']);
    expect(flags.required.Extension).toEqual([['url', '_url']]);
    const medicationRequest = flags.required.MedicationRequest.find((g) => g.includes('medicationReference'));
    expect(medicationRequest).toEqual(['medicationCodeableConcept', 'medicationReference']);
    expect(flags.summary.Patient).toContain('birthDate');
    expect(flags.summary.Patient).not.toContain('text');
  });
});
