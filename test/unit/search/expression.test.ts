import { narrowExpression, prepareBranch, requiredElement, rewriteAs, splitUnion } from '../../../src/search/expression';

describe('splitUnion', () => {
  test.each([
    ['Patient.name', ['Patient.name']],
    ['A.code | B.code', ['A.code', 'B.code']],
    ["A.x.where(system='a|b') | B.y", ["A.x.where(system='a|b')", 'B.y']],
    ['(A.value as Quantity) | (A.value as Range)', ['(A.value as Quantity)', '(A.value as Range)']],
    ['A.x.where((b | c).exists()) | D.e', ['A.x.where((b | c).exists())', 'D.e']],
    ["A.x.where(y = 'it\\'s | here')", ["A.x.where(y = 'it\\'s | here')"]],
  ])('%s', (expr, parts) => {
    expect(splitUnion(expr)).toEqual(parts);
  });
});

describe('narrowExpression keeps the branches for one type', () => {
  const clinicalCode =
    'AllergyIntolerance.code | AllergyIntolerance.reaction.substance | Condition.code | (DeviceRequest.code as CodeableConcept) | Observation.code';
  test.each([
    ['AllergyIntolerance', ['AllergyIntolerance.code', 'AllergyIntolerance.reaction.substance']],
    ['Condition', ['Condition.code']],
    ['DeviceRequest', ['(DeviceRequest.code as CodeableConcept)']],
    ['Patient', []],
  ])('clinical-code on %s', (type, parts) => {
    expect(narrowExpression(clinicalCode, type)).toEqual(parts);
  });

  test('a prefix of another type name is not that type', () => {
    expect(narrowExpression('Medication.code | MedicationRequest.code', 'Medication')).toEqual(['Medication.code']);
  });

  test('Resource/DomainResource roots and relative branches apply to every type', () => {
    expect(narrowExpression('Resource.meta.tag', 'Observation')).toEqual(['Resource.meta.tag']);
    expect(narrowExpression('name | alias', 'InsurancePlan')).toEqual(['name', 'alias']);
    expect(narrowExpression('%resource.id', 'Patient')).toEqual(['%resource.id']);
  });

  test('a branch that is just the type name (composites on the resource itself)', () => {
    expect(narrowExpression('Observation | Observation.component', 'Observation')).toEqual(['Observation', 'Observation.component']);
  });
});

describe('prepareBranch', () => {
  test.each([
    ['Observation.subject.where(resolve() is Patient)', { expression: 'Observation.subject', targetType: 'Patient', requires: 'subject' }],
    ['AuditEvent.entity.what.where(resolve() is Patient)', { expression: 'AuditEvent.entity.what', targetType: 'Patient', requires: 'entity' }],
    ['(Observation.value as Quantity)', { expression: '(Observation.value.ofType(Quantity))', requires: 'value' }],
    ['(Observation.value as CodeableConcept).text', { expression: '(Observation.value.ofType(CodeableConcept)).text', requires: 'value' }],
    ['Observation.component.value.as(Quantity)', { expression: 'Observation.component.value.ofType(Quantity)', requires: 'component' }],
    ['value.as(DateTime) | value.as(Period)', { expression: 'value.ofType(dateTime) | value.ofType(Period)' }],
    ['Condition.abatement.as(string)', { expression: 'Condition.abatement.ofType(string)', requires: 'abatement' }],
    ["Patient.telecom.where(system='email')", { expression: "Patient.telecom.where(system='email')", requires: 'telecom' }],
    ['Patient.deceased.exists() and Patient.deceased != false', { expression: 'Patient.deceased.exists() and Patient.deceased != false' }],
  ])('%s', (part, prepared) => {
    expect(prepareBranch(part)).toEqual(prepared);
  });

  test('the `as` operator is only rewritten when its operand is a plain path', () => {
    expect(rewriteAs('(Goal.target.due as date)')).toBe('(Goal.target.due.ofType(date))');
    expect(rewriteAs("(A.b.where(c='x') as Reference)")).toBe("(A.b.where(c='x').ofType(Reference))");
    // `x = y as T` is not a plain operand: left for the engine.
    expect(rewriteAs('a = b as T')).toBe('a = b as T');
    expect(rewriteAs("A.b.where(c = 'x as y')")).toBe("A.b.where(c = 'x as y')");
  });
});

describe('requiredElement: branches that are empty when their first element is absent', () => {
  test.each([
    ['Patient.name', 'name'],
    ['Resource.meta.lastUpdated', 'meta'],
    ['Bundle.entry[0].resource', 'entry'],
    ["Patient.extension('http://x').value", 'extension'],
    ["Patient.extension.where(url = 'http://x').extension.where(url = 'y').value", 'extension'],
    ['(Observation.value.ofType(CodeableConcept)).text', 'value'],
    ['value.ofType(Quantity)', 'value'],
    ['code', 'code'],
    ['Observation.performer.resolve().ofType(Practitioner).name', 'performer'],
  ])('%s -> %s', (expr, element) => {
    expect(requiredElement(expr)).toBe(element);
  });

  test.each([
    'Patient.deceased.exists() and Patient.deceased != false',
    'Patient.deceased.exists()',
    'Patient.name.empty()',
    'CareTeam.participant.count()',
    'Patient.name.all(family.exists())',
    "Patient.name.family | 'x'",
    '%resource.referenceSeq.chromosome',
    'Observation',
    'Patient.iif(active, name, telecom)',
    '(Patient.name).exists()',
  ])('%s -> none', (expr) => {
    expect(requiredElement(expr)).toBeUndefined();
  });
});
