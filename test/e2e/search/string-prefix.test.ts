/**
 * The default string match ("equals or starts with", FHIR R4 search.html#string) at the edges of
 * the range it is searched as: `>= value` and `< the least string after every string that
 * starts with it` over the first 200 characters the index holds (search-sql.ts startsWithCond).
 * Values of three or more characters are lookups the plan starts from (isStringAnchor); shorter
 * ones and several values go the other way; both must find the same rows.
 */
import type { Patient } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../../support/server';
import { Fixtures, matchKeys, sorted } from './support';

const MARK = 'urn:test:search:string-prefix';
const LONG = 'q'.repeat(205);

function p(key: string, family: string): Patient {
  return { resourceType: 'Patient', identifier: [{ system: MARK, value: key }], name: [{ family }] };
}

const PATIENTS: Record<string, Patient> = {
  abc: p('abc', 'Abc'),
  abcz: p('abcz', 'Abcz'),
  abd: p('abd', 'Abd'),
  abca: p('abca', 'ABCA'),
  ab: p('ab', 'Ab'),
  strasse: p('strasse', 'Straße'),
  strasa: p('strasa', 'Straßa'),
  strat: p('strat', 'Strat'),
  zz: p('zz', 'Zz{'), // '{' is the character after 'z'
  emoji: p('emoji', 'Ab😀x'),
  emoji2: p('emoji2', 'Ab😁'),
  long1: p('long1', `${LONG}alpha`),
  long2: p('long2', `${LONG}beta`),
  long3: p('long3', `${LONG.slice(0, 199)}r`), // shares 199 characters only
  pct: p('pct', 'Ab%c'),
  under: p('under', 'Ab_c'),
};

let server: TestServer;
let fx: Fixtures;
beforeAll(async () => {
  server = await startTestServer();
  fx = new Fixtures(server);
  await fx.load(PATIENTS);
});
afterAll(() => server.close());

async function expectPatients(query: string, expected: string[]): Promise<void> {
  expect(await matchKeys(server, fx, `Patient?identifier=${MARK}|&${query}`)).toEqual(sorted(expected));
}

const CASES: [string, string[]][] = [
  ['family=abc', ['abc', 'abcz', 'abca']], // not "abd": the range ends before it
  ['family=ABCZ', ['abcz']],
  ['family=abcza', []],
  ['family=ab', ['abc', 'abcz', 'abd', 'abca', 'ab', 'emoji', 'emoji2', 'pct', 'under']], // two characters: not a lookup
  ['family=abd', ['abd']],
  ['family=straß', ['strasse', 'strasa']], // ß is not folded; the range ends at "straà"
  ['family=strasse', []],
  ['family=zz', ['zz']],
  ['family=zz{', ['zz']],
  ['family=ab😀', ['emoji']], // an astral character is one character, the range ends at 😁
  ['family=ab😁', ['emoji2']],
  ['family=ab%', ['pct']], // LIKE's wildcards are plain characters here
  ['family=ab_', ['under']],
  [`family=${LONG}al`, ['long1']], // past the 200 indexed characters: the whole value decides
  [`family=${LONG}`, ['long1', 'long2']],
  [`family=${LONG.slice(0, 199)}`, ['long1', 'long2', 'long3']],
  [`family=${LONG.slice(0, 200)}`, ['long1', 'long2']],
  ['family=abc,strat', ['abc', 'abcz', 'abca', 'strat']], // several values: not a lookup, same rows
  ['family=abc&family=abcz', ['abcz']],
];

// Titles show a run of q as q×n.
test.each(CASES.map(([query, expected]) => [query.replace(/q{10,}/, (run) => `q×${run.length}`), query, expected] as const))('Patient?%s', (_title, query, expected) =>
  expectPatients(query, [...expected]),
);
