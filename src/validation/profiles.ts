/**
 * Validation against profiles (StructureDefinitions) the server knows, for resources that claim
 * them in meta.profile. Profiles the server does not know are ignored, as FHIR allows.
 *
 * Known profiles come from folders of JSON files read at start-up (StructureDefinitions, ValueSets,
 * CodeSystems, or Bundles of them) and, optionally, from a `lookup` callback for StructureDefinitions
 * stored through the API (cached briefly; call `invalidate(url)` when one is written).
 *
 * What is checked, and how, is in profile-check.ts; the base R4 definitions @medplum/core needs are
 * loaded on the first resource that claims a known profile (base-definitions.ts).
 */
import type { CodeSystem, OperationOutcomeIssue, Resource, StructureDefinition, ValueSet } from '@medplum/fhirtypes';
import { loadBaseDefinitions } from './base-definitions';
import { loadConformanceDirs, splitCanonical, type ConformanceStore } from './conformance';
import { checkProfile } from './profile-check';
import { prepareProfile, type Prepared } from './profile-prepare';
import { Terminology } from './terminology';
import { checkExtensions, extensionRules } from './extensions';

export interface ProfileValidator {
  /** Issues for every known profile the resource claims (empty when valid or none are known). */
  validate(resource: Resource): Promise<OperationOutcomeIssue[]>;
  /** Forgets what `lookup` returned for this URL (all URLs when none is given), and cached expansions. */
  invalidate(url?: string): void;
  /** What could not be used from `profileDirs`, in plain words (also passed to `onProblem`). */
  readonly problems: readonly string[];
  /** Canonical URLs of the profiles loaded from `profileDirs` (usable or not). */
  knownProfiles(): string[];
}

export interface ProfileValidatorOptions {
  /** Folders of JSON files read once, now. Absent or empty folders are fine. */
  profileDirs: string[];
  /** StructureDefinitions stored through the API, by canonical URL (without `|version`). */
  lookup?: (url: string) => Promise<StructureDefinition | undefined>;
  /** How long a `lookup` answer (including "not found") is reused. Default 30 s. */
  lookupTtlMs?: number;
  /** Told about each file or profile that cannot be used. Default: console.warn. */
  onProblem?: (message: string) => void;
  /** Clock for the lookup cache, injectable in tests. */
  now?: () => number;
}

const DEFAULT_TTL_MS = 30_000;
const MAX_ISSUES = 100;

interface CacheEntry {
  expires: number;
  prepared: Promise<Prepared | undefined>;
}

export function createProfileValidator(options: ProfileValidatorOptions = { profileDirs: [] }): ProfileValidator {
  const onProblem = options.onProblem ?? ((m: string): void => console.warn(`[continuum] profiles: ${m}`));
  const now = options.now ?? Date.now;
  const ttl = options.lookupTtlMs ?? DEFAULT_TTL_MS;

  const store: ConformanceStore = loadConformanceDirs(options.profileDirs);
  const problems = [...store.problems];
  const fromFiles = new Map<string, Prepared>();
  for (const sd of store.all('StructureDefinition')) {
    const prepared = prepareProfile(sd);
    if (!prepared.ok) {
      problems.push(prepared.problem);
    } else {
      prepared.profile.notes.forEach((n) => problems.push(`Profile ${sd.url}: ${n}`));
    }
    if (sd.url) {
      fromFiles.set(sd.url, prepared);
      if (sd.version) {
        fromFiles.set(`${sd.url}|${sd.version}`, prepared);
      }
    }
  }
  problems.forEach((p) => onProblem(p));

  const terminology = new Terminology({
    valueSet: async (url): Promise<ValueSet | undefined> => store.get('ValueSet', url),
    codeSystem: async (url): Promise<CodeSystem | undefined> => store.get('CodeSystem', url),
  });

  const cache = new Map<string, CacheEntry>();
  // Extensions defined in the profile folders are checked wherever they appear.
  const extensions = extensionRules(store.all('StructureDefinition'));

  async function resolve(canonical: string): Promise<Prepared | undefined> {
    const { url, version } = splitCanonical(canonical);
    if (fromFiles.has(url)) {
      // A version the files do not have is a profile the server does not know.
      return version ? fromFiles.get(`${url}|${version}`) : fromFiles.get(url);
    }
    if (!options.lookup) {
      return undefined;
    }
    let entry = cache.get(url);
    if (!entry || entry.expires <= now()) {
      const lookup = options.lookup;
      const prepared = lookup(url).then((sd) => (sd ? prepareProfile(sd) : undefined));
      entry = { expires: now() + ttl, prepared };
      cache.set(url, entry);
      const mine = entry;
      prepared.catch(() => {
        if (cache.get(url) === mine) {
          cache.delete(url);
        }
      });
    }
    const prepared = await entry.prepared;
    if (version && prepared?.ok && prepared.profile.version !== version) {
      return undefined;
    }
    return prepared;
  }

  async function validateAt(resource: Resource, location: string, issues: OperationOutcomeIssue[]): Promise<void> {
    const claims = resource.meta?.profile ?? [];
    for (let i = 0; i < claims.length; i++) {
      const claim = claims[i];
      if (typeof claim !== 'string') {
        continue;
      }
      const prepared = await resolve(claim);
      if (!prepared) {
        continue; // unknown profile: ignored
      }
      if (!prepared.ok) {
        const where = `${location}.meta.profile[${i}]`;
        const text = `Profile ${claim} is known to this server but cannot be used to validate: ${prepared.problem}`;
        issues.push({ severity: 'warning', code: 'not-supported', details: { text }, diagnostics: text, expression: [where] });
        continue;
      }
      const base = await loadBaseDefinitions();
      issues.push(...(await checkProfile(resource, prepared.profile, terminology, base, location)));
    }
    // Contained resources may claim profiles of their own.
    const contained = (resource as { contained?: Resource[] }).contained ?? [];
    for (let i = 0; i < contained.length; i++) {
      const c = contained[i];
      if (c && typeof c === 'object' && c.meta?.profile?.length) {
        await validateAt(c, `${location}.contained[${i}]`, issues);
      }
    }
  }

  return {
    problems,
    knownProfiles: () => [...new Set([...fromFiles.keys()].map((k) => splitCanonical(k).url))].sort(),
    invalidate(url?: string): void {
      if (url === undefined) {
        cache.clear();
      } else {
        cache.delete(splitCanonical(url).url);
      }
      terminology.clear();
    },
    async validate(resource: Resource): Promise<OperationOutcomeIssue[]> {
      const issues: OperationOutcomeIssue[] = await checkExtensions(resource, resource.resourceType, extensions, terminology);
      if (!resource?.meta?.profile?.length && !(resource as { contained?: unknown[] })?.contained?.length) {
        return issues;
      }
      await validateAt(resource, resource.resourceType, issues);
      return dedupe(issues).slice(0, MAX_ISSUES);
    },
  };
}

function dedupe(issues: OperationOutcomeIssue[]): OperationOutcomeIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.severity}|${i.code}|${i.expression?.join(',')}|${i.details?.text}`;
    if (seen.has(key)) {
      return false;
    }
    seen.add(key);
    return true;
  });
}
