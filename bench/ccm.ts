/**
 * The `ccm` benchmark case (`BENCH_CASES=ccm`): month close and the care team's worklist over a
 * generated CCM population. Issue target: month close for 10,000 enrolled patients with 20 time
 * entries each in <= 10 s on the embedded store; `$ccm-worklist` over those patients <= 300 ms.
 *
 * Dataset (NDJSON with fixed ids, loaded with `continuum import` before the server starts; not
 * measured). `patients` enrolled patients, each with:
 * - Patient `ccm-p000000`...; two active chronic Conditions (SNOMED 44054006 diabetes, 38341003
 *   hypertension: two categories, so eligible);
 * - an active CCM Consent (scope treatment, category ccm|ccm, provision.period.start a year or more
 *   before the closed month) and an active CCM CarePlan (category ccm|ccm, 1 in 10 complex-ccm,
 *   author Practitioner/bench-dr, period.start after the consent, a care-plan-review-date that has
 *   passed for 1 in 20);
 * - `entries` completed time-entry Tasks (code ccm|time-entry, for the Patient, basedOn the plan,
 *   performerType clinical-staff, 1 in 10 billing-practitioner; 1-5 minutes each, spread over the
 *   days of the closed month = the month before the current one on this machine's clock);
 * - the running-total MeasureReport the ccm-time-totals bot would have written for the CURRENT month
 *   (bots/ccm-time-totals/totals.ts; none for a patient with no minutes yet), and the stored
 *   eligibility determination (bots/ccm-eligibility/determination.ts: the eligibility bot writes
 *   one for every patient whose Conditions are written, so enrolled patients have one too);
 * - 1 in 50 an open urgent Task (an ODL alert).
 * Plus `patients / 10` non-enrolled patients with a determination: eligible without consent
 * (worklist `consent-missing`), eligible with an active consent (`not-enrolled`), or not eligible
 * (one category). What `$ccm-billing` must answer is computed here with the rules themselves
 * (src/ccm/billing.ts `billMonth` over the generated facts), so a broken or short answer fails.
 *
 * Measured on one server (`--no-bots`, the month-close bot deployed into the store before it starts):
 * 1. `GET /$ccm-worklist`: `runs` sequential requests after one warm-up; median and p95, against a
 *    plain `GET Patient/{id}` measured the same way; the item kinds are checked against the data.
 * 2. `GET /$ccm-billing?month=` (the computation the month close starts with, no writes).
 * 3. `POST Library/bot-ccm-month-close/$execute` with `month` (the judged figure, wall time: the
 *    bot calls `$ccm-month-close`, src/ccm/month-close.ts), then `GET ChargeItem?_summary=count`
 *    against the answer;
 * 4. the same month closed again (a retry or a correction: nothing to write, but `$ccm-billing` now
 *    reads the month's ChargeItems), its time as a note.
 * A close is waited for up to the bot's own timeout (bot.json) plus a minute. A wrong answer or a
 * failed step fails the case; the figures measured before it are kept in the notes.
 */
import { closeSync, cpSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { Observation, Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import { determination } from '../bots/ccm-eligibility/determination';
import { totalReport } from '../bots/ccm-time-totals/totals';
import { billMonth, type MonthFacts, type PerformerKind, type Program } from '../src/ccm/billing';

const CCM = 'http://continuum-ccm.org/fhir/CodeSystem/ccm';
const SNOMED = 'http://snomed.info/sct';
const REVIEW_DATE = 'http://continuum-ccm.org/fhir/StructureDefinition/care-plan-review-date';
const PRACTITIONER = 'Practitioner/bench-dr';
const NURSE = 'PractitionerRole/bench-nurse';
const DAY_MS = 86_400_000;

/** Writes one resource a line, in chunks (a file never sits in memory whole). */
class NdjsonWriter {
  count = 0;
  private readonly fd: number;
  private chunk = '';

  constructor(file: string) {
    this.fd = openSync(file, 'w');
  }

  write(resource: Resource): void {
    this.chunk += JSON.stringify(resource) + '\n';
    this.count++;
    if (this.chunk.length > 1 << 16) {
      writeSync(this.fd, this.chunk);
      this.chunk = '';
    }
  }

  close(): void {
    writeSync(this.fd, this.chunk);
    this.chunk = '';
    closeSync(this.fd);
  }
}

/** The issue's targets, at its size. */
export const CCM_TARGETS = {
  patients: 10_000,
  entries: 20,
  monthCloseSeconds: 10,
  worklistMs: 300,
};

export interface CcmDataset {
  dir: string;
  /** Enrolled patients, each with `entries` time entries in `month`. */
  patients: number;
  entries: number;
  nonEnrolled: number;
  /** Every resource written (what `continuum import` must report). */
  resources: number;
  /** The month closed (YYYY-MM): the one before `current`. */
  month: string;
  /** The server's current month when generated (running totals, worklist). */
  current: string;
  /** What the rules bill for `month`: lines (= ChargeItems), patients billed, total amount. */
  expected: { lines: number; patientsBilled: number; skipped: number; amount: number; byCode: Record<string, number> };
  /** What `$ccm-worklist` must list, by kind. */
  worklist: { time: number; reviewDue: number; urgent: number; consentMissing: number; notEnrolled: number };
}

const pad = (n: number, w: number): string => String(n).padStart(w, '0');
const patientId = (p: number): string => `ccm-p${pad(p, 6)}`;
const otherId = (q: number): string => `ccm-n${pad(q, 6)}`;
const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
const isoMinute = (ms: number): string => new Date(ms).toISOString().replace(/:\d\d\.\d{3}Z$/, ':00Z');

function monthStart(month: string): number {
  const [y, m] = month.split('-').map(Number);
  return Date.UTC(y, m - 1, 1);
}

function previousMonth(month: string): string {
  const d = new Date(monthStart(month) - DAY_MS);
  return d.toISOString().slice(0, 7);
}

const program = (p: number): Program => (p % 10 === 0 ? 'complex-ccm' : 'ccm');

/** Time entry k of patient p in the month starting at `start` (`days` days): start, minutes, kind. */
function entryOf(p: number, k: number, entries: number, start: number, days: number): { start: number; minutes: number; kind: PerformerKind } {
  const day = Math.floor((k * days) / entries);
  const at = start + day * DAY_MS + (8 + ((p + k) % 9)) * 3_600_000 + ((p * 13 + k * 7) % 60) * 60_000;
  // 1-3, 1-4 or 1-5 minutes by patient (20 entries: about 40, 50 or 60 minutes in the month).
  return { start: at, minutes: 1 + ((p * 7 + k * 3) % (3 + (p % 3))), kind: (p + k) % 10 === 3 ? 'billing-practitioner' : 'clinical-staff' };
}

function condition(id: string, patient: string, code: string, display: string, onset: string): Resource {
  return {
    resourceType: 'Condition',
    id,
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }] },
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'problem-list-item' }] }],
    code: { coding: [{ system: SNOMED, code, display }], text: display },
    subject: { reference: `Patient/${patient}` },
    onsetDateTime: onset,
  } as Resource;
}

function patientResource(id: string, n: number): Resource {
  return {
    resourceType: 'Patient',
    id,
    identifier: [{ system: 'urn:continuum:bench:ccm', value: id }],
    active: true,
    name: [{ family: `Ccm${pad(n, 6)}`, given: [n % 2 ? 'Ada' : 'Ben'] }],
    gender: n % 2 ? 'female' : 'male',
    birthDate: `${1935 + (n % 40)}-${pad(1 + (n % 12), 2)}-${pad(1 + (n % 28), 2)}`,
  } as Resource;
}

function consentResource(id: string, patient: string, start: string): Resource {
  return {
    resourceType: 'Consent',
    id,
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'treatment' }] },
    category: [{ coding: [{ system: CCM, code: 'ccm', display: 'Chronic care management' }] }],
    patient: { reference: `Patient/${patient}` },
    dateTime: start,
    performer: [{ reference: `Patient/${patient}` }],
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision: { type: 'permit', period: { start } },
  } as Resource;
}

/** The eligibility bot's determination for a patient with these Conditions. */
function determinationOf(patient: string, conditions: { id: string; category: string }[], issued: string): Observation {
  const eligible = conditions.length >= 2;
  const parameter: ParametersParameter[] = [
    { name: 'eligible', valueBoolean: eligible },
    { name: 'date', valueDate: issued.slice(0, 10) },
    ...conditions.map((c) => ({ name: 'category', valueCode: c.category })),
    ...conditions.map((c) => ({ name: 'condition', valueReference: { reference: `Condition/${c.id}` } })),
    ...(eligible ? [] : [{ name: 'reason', valueString: `Qualifying conditions in 1 category (${conditions[0]?.category ?? 'none'}); 2 are needed.` }]),
  ];
  return determination(patient, { resourceType: 'Parameters', parameter }, issued);
}

/** The running total the ccm-time-totals bot stores after `minutes` of clinical-staff time this month. */
function runningTotal(p: number, current: string, minutes: number, plan: { id: string; program: Program; start: string }, consentStart: string, now: Date): Resource {
  const start = monthStart(current);
  const facts: MonthFacts = {
    patient: patientId(p),
    month: current,
    entries: [{ id: `Task/${patientId(p)}-now`, start: new Date(start).toISOString(), end: new Date(start + minutes * 60_000).toISOString(), kind: 'clinical-staff', plan: `CarePlan/${plan.id}` }],
    plans: [{ id: plan.id, program: plan.program, status: 'active', author: PRACTITIONER, period: { start: plan.start } }],
    consents: [{ start: consentStart }],
    eligible: true,
    inpatient: [],
    services: [],
  };
  const r = billMonth(facts);
  // The `minutes` row of `$ccm-billing` (src/ccm/billing-operation.ts), which the bot reads.
  const row: Parameters = {
    resourceType: 'Parameters',
    parameter: [
      {
        name: 'minutes',
        part: [
          { name: 'patient', valueReference: { reference: `Patient/${patientId(p)}` } },
          { name: 'logged', valueInteger: r.loggedMinutes },
          { name: 'clinicalStaff', valueInteger: r.countedMinutes.staff },
          { name: 'billingPractitioner', valueInteger: r.countedMinutes.practitioner },
          ...(r.toNextCode
            ? [
                { name: 'nextCode', valueCoding: { system: 'http://www.ama-assn.org/go/cpt', code: r.toNextCode.code } },
                { name: 'toNextCode', valueInteger: r.toNextCode.minutes },
              ]
            : []),
        ],
      },
    ],
  };
  return totalReport(patientId(p), current, row, now.toISOString());
}

/**
 * Writes the dataset as NDJSON files (one per resource type) under `dir`, deterministically for a
 * given size and current month (`now`, this machine's clock: the server's).
 */
export function generateCcmDataset(dir: string, patients: number, entries: number, now = new Date()): CcmDataset {
  mkdirSync(dir, { recursive: true });
  const current = now.toISOString().slice(0, 7);
  const month = previousMonth(current);
  const start = monthStart(month);
  const days = Math.round((monthStart(current) - start) / DAY_MS);
  const today = isoDay(now.getTime());
  const issued = `${isoDay(start - 40 * DAY_MS)}T06:00:00Z`;
  const files = {
    practitioners: new NdjsonWriter(join(dir, '01-practitioners.ndjson')),
    patients: new NdjsonWriter(join(dir, '02-patients.ndjson')),
    conditions: new NdjsonWriter(join(dir, '03-conditions.ndjson')),
    consents: new NdjsonWriter(join(dir, '04-consents.ndjson')),
    plans: new NdjsonWriter(join(dir, '05-careplans.ndjson')),
    determinations: new NdjsonWriter(join(dir, '06-determinations.ndjson')),
    totals: new NdjsonWriter(join(dir, '07-running-totals.ndjson')),
    alerts: new NdjsonWriter(join(dir, '08-alert-tasks.ndjson')),
    entries: new NdjsonWriter(join(dir, '09-time-entries.ndjson')),
  };
  const expected: CcmDataset['expected'] = { lines: 0, patientsBilled: 0, skipped: 0, amount: 0, byCode: {} };
  const worklist: CcmDataset['worklist'] = { time: patients, reviewDue: 0, urgent: 0, consentMissing: 0, notEnrolled: 0 };
  try {
    files.practitioners.write({ resourceType: 'Practitioner', id: 'bench-dr', active: true, name: [{ family: 'Bench', given: ['Dana'], prefix: ['Dr'] }] });
    files.practitioners.write({
      resourceType: 'PractitionerRole',
      id: 'bench-nurse',
      active: true,
      code: [{ coding: [{ system: 'http://snomed.info/sct', code: '224535009', display: 'Registered nurse' }] }],
    });
    for (let p = 0; p < patients; p++) {
      const id = patientId(p);
      const consentStart = isoDay(start - (400 + (p % 300)) * DAY_MS);
      const planStart = isoDay(start - (399 + (p % 300)) * DAY_MS);
      const onset = isoDay(start - (1200 + (p % 500)) * DAY_MS);
      const plan = { id: `${id}-plan`, program: program(p), start: planStart };
      files.patients.write(patientResource(id, p));
      const conditions = [
        { id: `${id}-dm`, category: 'diabetes' },
        { id: `${id}-htn`, category: 'hypertension' },
      ];
      files.conditions.write(condition(conditions[0].id, id, '44054006', 'Diabetes mellitus type 2', onset));
      files.conditions.write(condition(conditions[1].id, id, '38341003', 'Hypertensive disorder', onset));
      files.consents.write(consentResource(`${id}-consent`, id, consentStart));
      const reviewDue = p % 20 === 7;
      worklist.reviewDue += reviewDue ? 1 : 0;
      files.plans.write({
        resourceType: 'CarePlan',
        id: plan.id,
        extension: [{ url: REVIEW_DATE, valueDate: reviewDue ? `${month}-15` : `${Number(current.slice(0, 4)) + 1}-06-01` }],
        status: 'active',
        intent: 'plan',
        category: [{ coding: [{ system: CCM, code: plan.program }] }],
        title: 'Chronic care management plan',
        subject: { reference: `Patient/${id}` },
        period: { start: planStart },
        author: { reference: PRACTITIONER },
        addresses: conditions.map((c) => ({ reference: `Condition/${c.id}` })),
      } as Resource);
      files.determinations.write(determinationOf(id, conditions, issued));
      const soFar = (p * 11) % 70;
      if (soFar > 0) {
        files.totals.write(runningTotal(p, current, soFar, plan, consentStart, now));
      }
      if (p % 50 === 11) {
        worklist.urgent++;
        files.alerts.write({
          resourceType: 'Task',
          id: `${id}-alert`,
          status: 'requested',
          intent: 'order',
          priority: 'urgent',
          code: { coding: [{ system: CCM, code: 'odl-alert' }] },
          description: 'Blood pressure 184/96 mm[Hg] (alert at 180 systolic)',
          for: { reference: `Patient/${id}` },
          authoredOn: `${today}T00:00:00Z`,
        } as Resource);
      }
      const timeEntries: MonthFacts['entries'] = [];
      for (let k = 0; k < entries; k++) {
        const e = entryOf(p, k, entries, start, days);
        const task = {
          resourceType: 'Task',
          id: `${id}-${month}-${pad(k, 3)}`,
          basedOn: [{ reference: `CarePlan/${plan.id}` }],
          status: 'completed',
          intent: 'order',
          code: { coding: [{ system: CCM, code: 'time-entry', display: 'Care-management time' }] },
          description: 'Care coordination call',
          for: { reference: `Patient/${id}` },
          executionPeriod: { start: isoMinute(e.start), end: isoMinute(e.start + e.minutes * 60_000) },
          performerType: [{ coding: [{ system: CCM, code: e.kind }] }],
          owner: { reference: e.kind === 'billing-practitioner' ? PRACTITIONER : NURSE },
        };
        files.entries.write(task as Resource);
        timeEntries.push({ id: `Task/${task.id}`, start: task.executionPeriod.start, end: task.executionPeriod.end, kind: e.kind, plan: `CarePlan/${plan.id}`, owner: task.owner.reference });
      }
      // What the month must bill for this patient, by the rules themselves.
      const billed = billMonth({
        patient: id,
        month,
        entries: timeEntries,
        plans: [{ id: plan.id, program: plan.program, status: 'active', author: PRACTITIONER, period: { start: planStart } }],
        consents: [{ start: consentStart }],
        eligible: true,
        inpatient: [],
        services: [],
      });
      expected.lines += billed.lines.length;
      expected.patientsBilled += billed.lines.length > 0 ? 1 : 0;
      expected.skipped += billed.skipped ? 1 : 0;
      for (const l of billed.lines) {
        expected.amount += l.amount ?? 0;
        expected.byCode[l.code] = (expected.byCode[l.code] ?? 0) + 1;
      }
    }
    const nonEnrolled = Math.max(1, Math.round(patients / 10));
    for (let q = 0; q < nonEnrolled; q++) {
      const id = otherId(q);
      const onset = isoDay(start - (900 + (q % 300)) * DAY_MS);
      files.patients.write(patientResource(id, patients + q));
      const conditions = [{ id: `${id}-dm`, category: 'diabetes' }];
      files.conditions.write(condition(`${id}-dm`, id, '44054006', 'Diabetes mellitus type 2', onset));
      if (q % 4 !== 3) {
        conditions.push({ id: `${id}-htn`, category: 'hypertension' });
        files.conditions.write(condition(`${id}-htn`, id, '38341003', 'Hypertensive disorder', onset));
      }
      if (q % 4 === 2) {
        files.consents.write(consentResource(`${id}-consent`, id, isoDay(start - 10 * DAY_MS)));
        worklist.notEnrolled++;
      } else if (q % 4 !== 3) {
        worklist.consentMissing++;
      }
      files.determinations.write(determinationOf(id, conditions, issued));
    }
    const resources = Object.values(files).reduce((n, f) => n + f.count, 0);
    expected.amount = Math.round(expected.amount * 100) / 100;
    return { dir, patients, entries, nonEnrolled, resources, month, current, expected, worklist };
  } finally {
    for (const f of Object.values(files)) {
      f.close();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The case

/** What the case needs of the benchmark's harness (bench/bench.ts): stores, children, requests. */
export interface CcmHarness {
  label: string;
  root: string;
  tempRoot: () => string;
  /** The headers of every request (the bearer token of the server running). */
  headers: () => Record<string, string>;
  freshStore: () => Promise<{ args: string[]; describe: string; dispose(): Promise<void> }>;
  /** Runs the CLI with these arguments; its exit code and output. */
  cli: (name: string, args: string[]) => Promise<{ code: number | null; output: string }>;
  /** `continuum import` of the dataset; throws unless every resource arrived; a note. */
  importData: (store: { args: string[] }, data: CcmDataset) => Promise<string>;
  startServer: (store: { args: string[] }) => Promise<{ base: string; alive: () => boolean; log: () => string; stop: () => Promise<void> }>;
}

export interface CcmStats {
  patients: number;
  entries: number;
  month: string;
  resources: number;
  monthCloseSeconds: number;
  monthClosePatientsPerSec: number;
  rerunSeconds: number;
  billingSeconds: number;
  chargeItems: number;
  billingLines: number;
  billingBytes: number;
  worklistMs: { median: number; p95: number; min: number; max: number; runs: number; items: number; bytes: number };
  readMs: { median: number; p95: number; runs: number };
  /**
   * When each phase ran, in microseconds of the machine's monotonic clock (CLOCK_MONOTONIC, as
   * process.hrtime): the clock of the timestamps in a server's .cpuprofile (BENCH_CPU_PROF=1), so a
   * profile can be cut into the phases.
   */
  phases: { name: string; startUs: number; endUs: number }[];
}

export interface CcmOutcome {
  /** Month close seconds (absent when it was not measured). */
  value?: number;
  targets: { text: string; pass: boolean }[];
  verdict: 'PASS' | 'MISS' | 'INFO' | 'FAIL';
  reference?: { ratio: number; to: string };
  notes: string[];
  ccm: Partial<CcmStats>;
}

interface Answer {
  status: number;
  text: string;
  ms: number;
}

/**
 * One request over node:http (fetch gives up on headers after 300 s), failing after `timeoutMs`.
 * A server busy in one long query (PGlite runs in its thread) answers nothing until it ends, so a
 * deadline is what keeps a broken run from hanging the benchmark.
 */
function call(method: string, url: string, headers: Record<string, string>, timeoutMs: number, body?: string): Promise<Answer> {
  return new Promise((resolveAnswer, reject) => {
    const started = performance.now();
    const req = request(url, { method, agent: false, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/fhir+json', 'content-length': Buffer.byteLength(body) }) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolveAnswer({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${new URL(url).pathname} did not answer within ${(timeoutMs / 1000).toFixed(0)} s`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

function ok(a: Answer, what: string): Parameters & { total?: number } {
  if (a.status !== 200) {
    throw new Error(`${what} answered ${a.status} after ${(a.ms / 1000).toFixed(1)} s: ${a.text.slice(0, 500)}`);
  }
  return JSON.parse(a.text) as Parameters & { total?: number };
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** Nearest-rank percentile. */
const pct = (v: number[], p: number): number => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const partOf = (p: ParametersParameter, name: string): ParametersParameter | undefined => p.part?.find((x) => x.name === name);
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Copies bots/ccm-month-close (no tests) into a folder of its own: `bots deploy` takes a folder of bot folders. */
function monthCloseBot(root: string, temp: string): { dir: string; timeoutMs: number } {
  const dir = join(temp, 'ccm-bots');
  const bot = join(dir, 'ccm-month-close');
  mkdirSync(bot, { recursive: true });
  const from = join(root, 'bots', 'ccm-month-close');
  for (const f of readdirSync(from)) {
    if (!/\.(test|spec)\.ts$/.test(f)) {
      cpSync(join(from, f), join(bot, f), { recursive: true });
    }
  }
  const timeoutMs = (JSON.parse(readFileSync(join(bot, 'bot.json'), 'utf8')) as { timeoutMs?: number }).timeoutMs ?? 30_000;
  return { dir, timeoutMs };
}

/** A request's deadline where the bot's own timeout does not apply. */
const LONG_MS = 30 * 60_000;

export async function runCcm(h: CcmHarness, data: CcmDataset, runs: number): Promise<CcmOutcome> {
  const notes: string[] = [];
  const stats: Partial<CcmStats> & { phases: CcmStats['phases'] } = { patients: data.patients, entries: data.entries, month: data.month, resources: data.resources, phases: [] };
  const bot = monthCloseBot(h.root, h.tempRoot());
  const store = await h.freshStore();
  try {
    console.log(`  ccm store: ${store.describe}`);
    const deploy = await h.cli(`bots-deploy-ccm-${h.label}`, ['bots', 'deploy', bot.dir, ...store.args]);
    if (deploy.code !== 0 || !/ccm-month-close/.test(deploy.output)) {
      throw new Error(`continuum bots deploy of ccm-month-close failed (exit ${String(deploy.code)}):\n${deploy.output.slice(-2000)}`);
    }
    notes.push(await h.importData(store, data));
    const server = await h.startServer(store);
    try {
      await measure(h, server, data, runs, bot.timeoutMs, stats, notes);
    } catch (err) {
      // Keep what was measured: a later step failing (a rerun, a check) must not hide the earlier figures.
      notes.push(`FAILED: ${(err as Error).message}`);
      if (!server.alive()) {
        notes.push(`the server exited:\n${server.log().slice(-3000)}`);
      }
      return { value: stats.monthCloseSeconds, targets: [], verdict: 'FAIL', notes, ccm: stats };
    } finally {
      await server.stop();
    }
  } finally {
    await store.dispose();
  }
  const full = stats as CcmStats;
  const atIssueSize = data.patients >= CCM_TARGETS.patients && data.entries >= CCM_TARGETS.entries;
  const targets = atIssueSize
    ? [
        { text: `month close <= ${CCM_TARGETS.monthCloseSeconds} s`, pass: full.monthCloseSeconds <= CCM_TARGETS.monthCloseSeconds },
        { text: `worklist <= ${CCM_TARGETS.worklistMs} ms (median)`, pass: full.worklistMs.median <= CCM_TARGETS.worklistMs },
      ]
    : [];
  if (!atIssueSize) {
    notes.push(
      `targets not judged: they are for ${fmt(CCM_TARGETS.patients)} patients x ${CCM_TARGETS.entries} entries, this run is ${fmt(data.patients)} x ${data.entries}; ` +
        `at this run's rate ${fmt(CCM_TARGETS.patients)} patients would close in ~${fmt(((CCM_TARGETS.patients * CCM_TARGETS.entries) / (data.patients * data.entries)) * full.monthCloseSeconds, 1)} s ` +
        `if it scaled linearly (it need not: measure at the issue's size)`,
    );
  }
  return {
    value: full.monthCloseSeconds,
    targets,
    verdict: targets.length === 0 ? 'INFO' : targets.every((t) => t.pass) ? 'PASS' : 'MISS',
    reference: { ratio: full.worklistMs.median / full.readMs.median, to: 'read (worklist latency)' },
    notes,
    ccm: full,
  };
}

/** The measurements, on a running server; fills `stats` and `notes` as it goes, throws on a wrong answer. */
async function measure(
  h: CcmHarness,
  server: { base: string; alive: () => boolean },
  data: CcmDataset,
  runs: number,
  botTimeoutMs: number,
  stats: Partial<CcmStats> & { phases: CcmStats['phases'] },
  notes: string[],
): Promise<void> {
  const base = server.base;
  const get = (path: string, timeoutMs = LONG_MS): Promise<Answer> => call('GET', `${base}${path}`, h.headers(), timeoutMs);
  const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const startUs = Number(process.hrtime.bigint() / 1000n);
    try {
      return await fn();
    } finally {
      stats.phases.push({ name, startUs, endUs: Number(process.hrtime.bigint() / 1000n) });
    }
  };
  const alive = (what: string): void => {
    if (!server.alive()) {
      throw new Error(`the server exited during ${what}`);
    }
  };

  // 1. Worklist, against a plain read, both sequential.
  const readPaths = Array.from({ length: 50 }, (_, i) => `/Patient/${patientId((i * 7919) % data.patients)}`);
  for (const p of readPaths.slice(0, 10)) {
    ok(await get(p), `GET ${p}`);
  }
  const reads: number[] = [];
  for (let r = 0; r < 3; r++) {
    for (const p of readPaths) {
      const a = await get(p);
      if (a.status !== 200) {
        throw new Error(`GET ${p} answered ${a.status}: ${a.text.slice(0, 300)}`);
      }
      reads.push(a.ms);
    }
  }
  const readMs = { median: median(reads), p95: pct(reads, 95), runs: reads.length };
  stats.readMs = readMs;
  const first = await get('/$ccm-worklist');
  const list = ok(first, 'GET /$ccm-worklist');
  const items = (list.parameter ?? []).filter((p) => p.name === 'item');
  const kinds: Record<string, number> = {};
  for (const it of items) {
    const k = partOf(it, 'kind')?.valueCode ?? '?';
    kinds[k] = (kinds[k] ?? 0) + 1;
  }
  const want: Record<string, number> = {
    'urgent-task': data.worklist.urgent,
    'review-due': data.worklist.reviewDue,
    time: data.worklist.time,
    'consent-missing': data.worklist.consentMissing,
    'not-enrolled': data.worklist.notEnrolled,
  };
  const wrong = Object.entries(want).filter(([k, n]) => (kinds[k] ?? 0) !== n);
  if (items.length === 0 || wrong.length > 0) {
    throw new Error(`$ccm-worklist listed ${items.length} items (${JSON.stringify(kinds)}); expected ${JSON.stringify(want)}`);
  }
  const worklistTimes: number[] = [];
  await phase('worklist', async () => {
    for (let r = 0; r < runs; r++) {
      const a = await get('/$ccm-worklist');
      if (a.status !== 200 || a.text.length !== first.text.length) {
        throw new Error(`GET /$ccm-worklist run ${r + 1} answered ${a.status} with ${a.text.length} bytes (first: ${first.text.length}): ${a.text.slice(0, 300)}`);
      }
      worklistTimes.push(a.ms);
    }
  });
  alive('the worklist');
  const worklistMs = { median: median(worklistTimes), p95: pct(worklistTimes, 95), min: Math.min(...worklistTimes), max: Math.max(...worklistTimes), runs, items: items.length, bytes: first.text.length };
  stats.worklistMs = worklistMs;
  notes.push(
    `$ccm-worklist: median ${fmt(worklistMs.median, 1)} ms, p95 ${fmt(worklistMs.p95, 1)} ms (min ${fmt(worklistMs.min, 1)}, max ${fmt(worklistMs.max, 1)}; ${runs} sequential runs after one warm-up of ${fmt(first.ms, 0)} ms) = ` +
      `${fmt(worklistMs.median / readMs.median, 0)}x a plain GET Patient/{id} (median ${fmt(readMs.median, 2)} ms, p95 ${fmt(readMs.p95, 2)} ms, ${readMs.runs} sequential reads); ` +
      `${fmt(items.length)} items (${Object.entries(kinds).map(([k, n]) => `${k} ${fmt(n)}`).join(', ')}), ${fmt(first.text.length / 1e6, 1)} MB`,
  );

  // 2. $ccm-billing alone: the month's computation, no writes.
  console.log(`  ccm: GET /$ccm-billing?month=${data.month} (${fmt(data.patients)} patients x ${data.entries} entries)...`);
  const billingAnswer = await phase('billing', () => get(`/$ccm-billing?month=${data.month}`));
  alive('$ccm-billing');
  const billing = ok(billingAnswer, `GET /$ccm-billing?month=${data.month}`);
  const lines = (billing.parameter ?? []).filter((p) => p.name === 'line');
  const skipped = (billing.parameter ?? []).filter((p) => p.name === 'skipped');
  const total = (billing.parameter ?? []).find((p) => p.name === 'total')?.valueMoney?.value;
  const billedPatients = new Set(lines.map((l) => partOf(l, 'patient')?.valueReference?.reference)).size;
  if (
    lines.length === 0 ||
    lines.length !== data.expected.lines ||
    billedPatients !== data.expected.patientsBilled ||
    skipped.length !== data.expected.skipped ||
    Math.abs((total ?? 0) - data.expected.amount) > 0.005
  ) {
    throw new Error(
      `$ccm-billing for ${data.month}: ${lines.length} lines for ${billedPatients} patients, ${skipped.length} skipped, total ${String(total)}; ` +
        `expected ${data.expected.lines} lines for ${data.expected.patientsBilled} patients, ${data.expected.skipped} skipped, total ${data.expected.amount}` +
        (skipped[0] ? `; first skipped: ${JSON.stringify(skipped[0]).slice(0, 400)}` : ''),
    );
  }
  const billingSeconds = billingAnswer.ms / 1000;
  Object.assign(stats, { billingSeconds, billingLines: lines.length, billingBytes: billingAnswer.text.length });
  notes.push(
    `$ccm-billing?month=${data.month} alone (no writes): ${billingSeconds.toFixed(2)} s = ${fmt(data.patients / billingSeconds)} patients/s, ${fmt((billingAnswer.ms * 1000) / data.patients)} us per patient; ` +
      `${fmt(lines.length)} lines for ${fmt(billedPatients)} patients (${Object.entries(data.expected.byCode).sort().map(([c, n]) => `${c} x${fmt(n)}`).join(', ')}), ${fmt(skipped.length)} skipped, ` +
      `total $${fmt(total ?? 0, 2)}, ${fmt(billingAnswer.text.length / 1e6, 1)} MB; matches the rules applied to the generated facts`,
  );

  // 3. Month close: the bot asks $ccm-billing and writes the ChargeItems. Waited for up to the
  //    bot's own timeout (bot.json), plus a minute.
  const close = (): Promise<Answer> =>
    call('POST', `${base}/Library/bot-ccm-month-close/$execute`, h.headers(), botTimeoutMs + 60_000, JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'month', valueString: data.month }] }));
  const int = (p: Parameters, name: string): number | undefined => p.parameter?.find((x) => x.name === name)?.valueInteger;
  console.log(`  ccm: POST Library/bot-ccm-month-close/$execute month=${data.month}...`);
  const closeAnswer = await phase('month-close', close);
  alive('the month close');
  const closed = ok(closeAnswer, 'POST Library/bot-ccm-month-close/$execute');
  const chargeItems = int(closed, 'chargeItems');
  const written = int(closed, 'written');
  const count = ok(await get('/ChargeItem?_summary=count'), 'GET ChargeItem?_summary=count').total;
  if (!chargeItems || chargeItems !== data.expected.lines || written !== chargeItems || count !== chargeItems) {
    throw new Error(`month close: the bot answered ${closeAnswer.text.slice(0, 400)}; the store holds ${String(count)} ChargeItems; expected ${data.expected.lines} written`);
  }
  const monthCloseSeconds = closeAnswer.ms / 1000;
  const perSec = data.patients / monthCloseSeconds;
  Object.assign(stats, { monthCloseSeconds, monthClosePatientsPerSec: perSec, chargeItems });
  notes.push(
    `month close ${data.month}: ${monthCloseSeconds.toFixed(2)} s wall = ${fmt(perSec)} patients/s; ${fmt(chargeItems)} ChargeItems written (ChargeItem?_summary=count agrees); ` +
      `$ccm-billing alone took ${billingSeconds.toFixed(2)} s = ${fmt((billingSeconds / monthCloseSeconds) * 100)} % of it, so ~${Math.max(0, monthCloseSeconds - billingSeconds).toFixed(2)} s is writing ` +
      `(${fmt(chargeItems)} ChargeItems as ${Math.ceil(chargeItems / 2000)} transaction Bundles in one store transaction: ${fmt((Math.max(0, monthCloseSeconds - billingSeconds) * 1e6) / chargeItems)} us per ChargeItem)`,
  );

  // 4. The month closed again (a retry, or a correction): the same computation, now with the
  //    month's ChargeItems in the store (which $ccm-billing reads), nothing to write.
  console.log(`  ccm: the month close again (idempotent rerun)...`);
  const again = await phase('month-close-rerun', close);
  alive('the month close rerun');
  const rerun = ok(again, 'the month close rerun');
  const rerunCount = ok(await get('/ChargeItem?_summary=count'), 'GET ChargeItem?_summary=count').total;
  if (int(rerun, 'unchanged') !== chargeItems || int(rerun, 'written') !== 0 || rerunCount !== chargeItems) {
    throw new Error(`month close rerun: the bot answered ${again.text.slice(0, 400)}; the store holds ${String(rerunCount)} ChargeItems; expected all ${chargeItems} unchanged`);
  }
  stats.rerunSeconds = again.ms / 1000;
  notes.push(`month close rerun (idempotent: ${fmt(chargeItems)} unchanged, nothing written; $ccm-billing now also reads the month's ChargeItems): ${stats.rerunSeconds.toFixed(2)} s`);
}
