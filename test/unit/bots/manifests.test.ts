/**
 * The bots shipped in bots/: every scope a bot.json declares is a SMART scope the server grants.
 * A scope the parser does not understand is dropped without a word (never widened), so a typo such
 * as `system/CarePlan.rsu` (v2 letters must come in `cruds` order: `rus`) leaves the bot without
 * the access it needs, and it fails with 403 at its first run.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseScopes } from '../../../src/auth/scopes';

const BOTS = join(__dirname, '../../../bots');
const manifests = readdirSync(BOTS)
  .filter((name) => existsSync(join(BOTS, name, 'bot.json')))
  .map((name) => [name, JSON.parse(readFileSync(join(BOTS, name, 'bot.json'), 'utf8')) as { scope: string }] as const);

test('there are bots to check', () => {
  expect(manifests.map(([name]) => name)).toEqual(expect.arrayContaining(['ccm-consent-revocation', 'ccm-enrollment-guard', 'ccm-care-plan-review']));
});

test.each(manifests)('%s: every scope in bot.json is understood', (_name, manifest) => {
  const parsed = parseScopes(manifest.scope);
  expect(parsed.unknown).toEqual([]);
  expect(parsed.grants.length).toBe(manifest.scope.trim().split(/\s+/).length);
});
