/**
 * Builders for the CCM tests (ccm-domain.md sections 2-4 and 7): a server with the bots of bots/
 * and a clock the test moves, the resources of an enrollment (chronic Conditions, a Practitioner
 * who saw the patient, a CCM Consent, a CareTeam and a Goal) and CCM CarePlans.
 *
 * Tokens are checked against the server's clock, so a test that moves the clock past an hour asks
 * for a fresh token (`api()`), rather than using `server.request()`'s, minted at start.
 */
import { join } from 'node:path';
import type { CarePlan, CareTeam, Consent, Encounter, Goal, OperationOutcome, Practitioner, Reference, Resource } from '@medplum/fhirtypes';
import type supertest from 'supertest';
import { condition, patient } from './builders';
import { startTestServer, type TestServer } from './server';

export const CCM = 'http://continuum-ccm.org/fhir/CodeSystem/ccm';
export const REQUIREMENT = 'http://continuum-ccm.org/fhir/CodeSystem/ccm-enrollment-requirement';
export const REVIEW_DATE = 'http://continuum-ccm.org/fhir/StructureDefinition/care-plan-review-date';
export const CONSENT_SCOPE = 'http://terminology.hl7.org/CodeSystem/consentscope';
export const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

/** SNOMED CT codes of section 2's table. */
export const SCT = { diabetes: '44054006', hypertension: '38341003', copd: '13645005', prediabetes: '15777000' } as const;

export type Program = 'ccm' | 'complex-ccm' | 'pcm';

/** The server's clock; `set('2026-03-15')` moves it (noon UTC unless a time is given). */
export class Clock {
  private current: Date;
  constructor(at: string) {
    this.current = Clock.parse(at);
  }
  private static parse(at: string): Date {
    return new Date(at.length === 10 ? `${at}T12:00:00Z` : at);
  }
  set(at: string): void {
    this.current = Clock.parse(at);
  }
  now = (): Date => this.current;
  /** YYYY-MM-DD. */
  today(): string {
    return this.current.toISOString().slice(0, 10);
  }
}

export interface CcmServer extends TestServer {
  clock: Clock;
  /** An agent with an all-access token valid on the server's clock now. */
  api: () => Promise<supertest.Agent>;
}

/** A server on a fresh store with every bot of bots/ deployed, on an injected clock (the cron scheduler off: tests run bots themselves). */
export async function startCcmServer(at: string): Promise<CcmServer> {
  const clock = new Clock(at);
  const server = await startTestServer({
    deployBots: [join(__dirname, '../../bots')],
    now: clock.now,
    bots: { retryBaseMs: 20, pollMs: 100, scheduler: false },
  });
  return { ...server, clock, api: () => server.as('system/*.cruds') };
}

export const ref = (r: Resource): string => `${r.resourceType}/${r.id as string}`;
export const reference = (r: Resource): Reference => ({ reference: ref(r) });

/** Creates a resource; fails the test with the server's answer unless it is 201. */
export async function create<T extends Resource>(server: CcmServer, resource: T): Promise<T> {
  const res = await (await server.api()).post(`/${resource.resourceType}`).send(resource);
  if (res.status !== 201) {
    throw new Error(`POST ${resource.resourceType} answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  return res.body as T;
}

export async function read<T extends Resource>(server: CcmServer, reference: string): Promise<T> {
  const res = await (await server.api()).get(`/${reference}`);
  if (res.status !== 200) {
    throw new Error(`GET ${reference} answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  return res.body as T;
}

/** Every resource a search finds (one page, up to 1000). */
export async function search<T extends Resource>(server: CcmServer, query: string): Promise<T[]> {
  const res = await (await server.api()).get(`/${query}${query.includes('?') ? '&' : '?'}_count=1000`);
  if (res.status !== 200) {
    throw new Error(`GET ${query} answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  return ((res.body.entry ?? []) as { resource: T }[]).map((e) => e.resource);
}

export function practitioner(family: string): Practitioner {
  return { resourceType: 'Practitioner', name: [{ family, given: ['Dr'] }] };
}

/** A finished ambulatory (face-to-face) Encounter of the patient with the practitioner on `date`. */
export function visit(patientRef: string, practitionerRef: string, date: string, overrides: Partial<Encounter> = {}): Encounter {
  return {
    resourceType: 'Encounter',
    status: 'finished',
    class: { system: ACT_CODE, code: 'AMB', display: 'ambulatory' },
    subject: { reference: patientRef },
    participant: [{ individual: { reference: practitionerRef } }],
    period: { start: `${date}T09:00:00Z`, end: `${date}T09:30:00Z` },
    ...overrides,
  };
}

/** An active CCM Consent (scope treatment, program in the category) from `start`. */
export function ccmConsent(patientRef: string, performerRef: string, start: string, overrides: Partial<Consent> = {}, program: Program = 'ccm'): Consent {
  return {
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: CONSENT_SCOPE, code: 'treatment' }] },
    category: [{ coding: [{ system: CCM, code: program }] }],
    patient: { reference: patientRef },
    dateTime: `${start}T10:00:00Z`,
    performer: [{ reference: performerRef }],
    policyRule: { coding: [{ system: ACT_CODE, code: 'OPTIN' }] },
    provision: { type: 'permit', period: { start } },
    ...overrides,
  };
}

export function careTeam(patientRef: string, members: string[]): CareTeam {
  return {
    resourceType: 'CareTeam',
    status: 'active',
    name: 'CCM care team',
    subject: { reference: patientRef },
    participant: members.map((m) => ({ member: { reference: m } })),
  };
}

/** A measurable goal: HbA1c below 7 % by `due`. */
export function a1cGoal(patientRef: string, due: string, addresses?: string): Goal {
  return {
    resourceType: 'Goal',
    lifecycleStatus: 'active',
    description: { text: 'HbA1c below 7 %' },
    subject: { reference: patientRef },
    target: [
      {
        measure: { coding: [{ system: 'http://loinc.org', code: '4548-4', display: 'Hemoglobin A1c' }] },
        detailQuantity: { value: 7, comparator: '<', unit: '%', system: 'http://unitsofmeasure.org', code: '%' },
        dueDate: due,
      },
    ],
    ...(addresses ? { addresses: [{ reference: addresses }] } : {}),
  };
}

/** A CCM CarePlan (status active unless overridden). */
export function ccmCarePlan(patientRef: string, overrides: Partial<CarePlan> = {}, program: Program = 'ccm'): CarePlan {
  return {
    resourceType: 'CarePlan',
    status: 'active',
    intent: 'plan',
    title: 'Chronic care management plan',
    category: [{ coding: [{ system: CCM, code: program }] }],
    subject: { reference: patientRef },
    ...overrides,
  };
}

export interface Enrollable {
  patient: string;
  practitioner: string;
  conditions: string[];
  encounter?: string;
  consent?: string;
  careTeam: string;
  goal: string;
  /** An active CCM CarePlan by the practitioner that every requirement allows (not stored). */
  plan: (overrides?: Partial<CarePlan>, program?: Program) => CarePlan;
}

export interface EnrollableOptions {
  family?: string;
  /** SNOMED CT codes of the patient's active Conditions (default diabetes and hypertension). */
  conditions?: string[];
  /** The day of the face-to-face visit with the practitioner; `false`: none. */
  visitOn?: string | false;
  /** Changes to the visit (another class, participant...). */
  visitOverrides?: Partial<Encounter>;
  /** The day the CCM consent starts; `false`: no consent. */
  consentFrom?: string | false;
  /** An existing Practitioner to use instead of making one. */
  practitioner?: string;
}

/**
 * A patient who may be enrolled: two chronic Conditions in different categories, a Practitioner who
 * saw them face to face (a finished Encounter), an active CCM Consent, a CareTeam and a Goal. Each
 * piece can be left out to break one requirement.
 */
export async function enrollablePatient(server: CcmServer, options: EnrollableOptions = {}): Promise<Enrollable> {
  const p = await create(server, patient({ name: [{ family: options.family ?? 'Ccm', given: ['Ada'] }] }));
  const patientRef = ref(p);
  const practitionerRef = options.practitioner ?? ref(await create(server, practitioner(`Billing-${options.family ?? 'Ccm'}`)));
  const conditions: string[] = [];
  for (const code of options.conditions ?? [SCT.diabetes, SCT.hypertension]) {
    conditions.push(ref(await create(server, condition(patientRef, code, { onsetDateTime: '2020-05-01' }))));
  }
  const visitOn = options.visitOn ?? '2026-01-10';
  const encounter = visitOn === false ? undefined : ref(await create(server, visit(patientRef, practitionerRef, visitOn, options.visitOverrides)));
  const consentFrom = options.consentFrom ?? '2026-01-10';
  const consent = consentFrom === false ? undefined : ref(await create(server, ccmConsent(patientRef, patientRef, consentFrom)));
  const team = ref(await create(server, careTeam(patientRef, [practitionerRef])));
  const goal = ref(await create(server, a1cGoal(patientRef, '2026-12-31', conditions[0])));
  return {
    patient: patientRef,
    practitioner: practitionerRef,
    conditions,
    encounter,
    consent,
    careTeam: team,
    goal,
    plan: (overrides = {}, program = 'ccm') =>
      ccmCarePlan(
        patientRef,
        {
          author: { reference: practitionerRef },
          addresses: conditions.map((c) => ({ reference: c })),
          goal: [{ reference: goal }],
          careTeam: [{ reference: team }],
          period: { start: '2026-01-10' },
          ...overrides,
        },
        program,
      ),
  };
}

/** The codes of the unmet requirements an OperationOutcome lists (its error issues), sorted. */
export function unmet(outcome: OperationOutcome): string[] {
  return (outcome.issue ?? [])
    .filter((i) => i.severity === 'error')
    .map((i) => {
      const coding = i.details?.coding?.find((c) => c.system === REQUIREMENT);
      return coding?.code ?? `(no requirement code: ${i.diagnostics ?? ''})`;
    })
    .sort();
}

/** The plain-words text of the issue for one requirement. */
export function requirementText(outcome: OperationOutcome, code: string): string {
  const issue = (outcome.issue ?? []).find((i) => i.details?.coding?.some((c) => c.system === REQUIREMENT && c.code === code));
  return issue?.details?.text ?? issue?.diagnostics ?? '';
}
