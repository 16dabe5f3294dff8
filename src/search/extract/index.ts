/**
 * Write-time extraction of search index values: `extractIndexValues(resource, registry)` evaluates
 * every indexed SearchParameter of the resource's type (but the unions of others, unions.ts) and
 * returns typed rows (see rows.ts), one array per parameter type, for the store to write in the
 * same transaction as the resource.
 *
 * Values are de-duplicated per parameter. A parameter whose expression fails on this resource
 * contributes nothing (reported through `onError`), so one odd definition never blocks a write.
 */
import type { SearchParamDef, SearchParamRegistry } from '../definitions';
import { evaluateFast, evaluateTyped } from '../fhirpath';
import { compositeValues } from './composite';
import { type ExtractContext, resourceHas } from './context';
import { dateValues } from './date';
import { numberValues } from './number';
import { quantityValues } from './quantity';
import { referenceValues } from './reference';
import { emptyRows, type IndexRows } from './rows';
import { stringValues } from './string';
import { tokenValues } from './token';
import { uriValues } from './uri';
import { valueKey } from './values';
import { indexedParams } from '../unions';

export type * from './rows';
export { normalizeString } from './string';
export { dateRange, formatInstant, type MsRange } from './date';
export { parseReference } from './reference';
export { toCanonical, UCUM } from './quantity';
export { componentTypes } from './composite';

export interface ExtractOptions {
  /** The server's base URL: absolute references under it are indexed as local ones. */
  baseUrl?: string;
  /** Called when a parameter's expression throws on this resource; its values are skipped. */
  onError?: (def: SearchParamDef, error: unknown) => void;
}

/** The resource shape extraction needs (any FHIR resource as parsed JSON). */
export interface IndexableResource {
  readonly resourceType: string;
}

/**
 * Every index row for `resource`: the values of each indexed SearchParameter of its type in
 * `registry`. Synchronous, no I/O; the resource is not modified.
 */
export function extractIndexValues(resource: IndexableResource, registry: SearchParamRegistry, options: ExtractOptions = {}): IndexRows {
  const rows = emptyRows();
  const ctx: ExtractContext = { resource: resource as ExtractContext['resource'], baseUrl: options.baseUrl?.replace(/\/+$/, '') };
  // Unions of other parameters (unions.ts) have no rows of their own: searches read their sources'.
  for (const def of indexedParams(registry, resource.resourceType)) {
    try {
      extractParam(def, registry, ctx, rows);
    } catch (err) {
      options.onError?.(def, err);
    }
  }
  return rows;
}

/**
 * Index rows of only the parameters named in `codes` (access checks need a few reference and token
 * parameters of one resource, not its whole index).
 */
export function extractSelected(resource: IndexableResource, registry: SearchParamRegistry, codes: ReadonlySet<string>, options: ExtractOptions = {}): IndexRows {
  const rows = emptyRows();
  const ctx: ExtractContext = { resource: resource as ExtractContext['resource'], baseUrl: options.baseUrl?.replace(/\/+$/, '') };
  for (const def of registry.forType(resource.resourceType)) {
    if (codes.has(def.code)) {
      try {
        extractParam(def, registry, ctx, rows);
      } catch (err) {
        options.onError?.(def, err);
      }
    }
  }
  return rows;
}

function extractParam(def: SearchParamDef, registry: SearchParamRegistry, ctx: ExtractContext, rows: IndexRows): void {
  const code = def.code;
  if (def.type === 'composite') {
    for (const v of compositeValues(def, registry, ctx)) {
      rows.composite.push({ code, ...v });
    }
    return;
  }
  const seen = new Set<string>();
  const push = <T extends object>(list: ({ code: string } & T)[], v: T): void => {
    const key = valueKey(v);
    if (!seen.has(key)) {
      seen.add(key);
      list.push({ code, ...v });
    }
  };
  for (const branch of def.branches) {
    if (branch.requires !== undefined && !resourceHas(ctx, branch.requires)) {
      continue;
    }
    const values = evaluateFast(branch.expression, ctx.resource) ?? evaluateTyped(branch.expression, ctx.resource, ctx.resource);
    for (const tv of values) {
      switch (def.type) {
        case 'string':
          for (const v of stringValues(tv)) push(rows.string, v);
          break;
        case 'token':
          for (const v of tokenValues(tv)) push(rows.token, v);
          break;
        case 'reference':
          for (const v of referenceValues(tv, ctx)) {
            if (branch.targetType === undefined || v.targetType === branch.targetType) {
              push(rows.reference, v);
            }
          }
          break;
        case 'date':
          for (const v of dateValues(tv)) push(rows.date, v);
          break;
        case 'number':
          for (const v of numberValues(tv)) push(rows.number, v);
          break;
        case 'quantity':
          for (const v of quantityValues(tv)) push(rows.quantity, v);
          break;
        case 'uri':
          for (const v of uriValues(tv)) push(rows.uri, v);
          break;
        case 'special':
          break;
      }
    }
  }
}
