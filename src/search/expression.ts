/**
 * Text-level preparation of SearchParameter FHIRPath expressions, done once per parameter and type.
 *
 * The R4 definitions share one expression among many types (`AllergyIntolerance.code | Condition.code |
 * ...`); `narrowExpression` keeps the branches that can apply to one type so that evaluation per
 * resource is cheap. `prepareBranch` rewrites a branch into what the extractor evaluates:
 *
 * - `X.where(resolve() is T)` -> `X` plus a target-type filter applied to the extracted references
 *   (nothing is fetched at write time; the type comes from the reference itself);
 * - `X as T` / `X.as(T)` -> `X.ofType(T)`: R4 uses `as` on collections (`Observation.component.value
 *   as Quantity`), which FHIRPath 2 (and fhirpath.js) rejects for more than one item;
 * - `as(DateTime)` etc. -> the FHIR primitive (`dateTime`), which is what the element holds.
 *
 * Pure string functions; no FHIRPath engine here.
 */

/** One part of a top-level union, ready to compile. */
export interface PreparedBranch {
  /** The FHIRPath expression to evaluate against the resource. */
  expression: string;
  /** From a trailing `.where(resolve() is T)`: keep only references whose target type is T. */
  targetType?: string;
  /**
   * The element the branch starts from (`code` for `Observation.code.coding`, `value` for
   * `value.ofType(Quantity)`), when the branch is a plain navigation chain and so is empty whenever
   * that element is absent: extraction skips evaluating it then. Absent when not provable
   * (`deceased.exists() and ...` is `false`, not empty, on a resource without `deceased`).
   */
  requires?: string;
}

/** Splits an expression on `|` at the top level (outside parentheses, brackets and string literals). */
export function splitUnion(expression: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i];
    if (c === "'" || c === '`' || c === '"') {
      i = skipQuoted(expression, i);
    } else if (c === '(' || c === '[' || c === '{') {
      depth++;
    } else if (c === ')' || c === ']' || c === '}') {
      depth--;
    } else if (c === '|' && depth === 0) {
      parts.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(expression.slice(start).trim());
  return parts.filter((p) => p !== '');
}

/** Index of the closing quote of the literal opening at `i` (honours backslash escapes). */
function skipQuoted(s: string, i: number): number {
  const quote = s[i];
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] === '\\') {
      j++;
    } else if (s[j] === quote) {
      return j;
    }
  }
  return s.length - 1;
}

/** Types a branch may start with and still apply to every resource type. */
const UNIVERSAL_ROOTS = new Set(['Resource', 'DomainResource']);

/**
 * The branches of `expression` that can apply to `resourceType`: those rooted at the type
 * (`Observation.code`, `(Observation.value as Quantity)`, `Observation`), at Resource/DomainResource,
 * or at no type at all (`name | alias`, `%resource...`). Branches rooted at another type are dropped.
 */
export function narrowExpression(expression: string | readonly string[], resourceType: string): string[] {
  const parts = typeof expression === 'string' ? splitUnion(expression) : expression;
  return parts.filter((part) => appliesTo(part, resourceType));
}

/** Whether one union branch can apply to `resourceType` (see narrowExpression). */
export function appliesTo(part: string, resourceType: string): boolean {
  return rootApplies(branchRoot(part), resourceType);
}

/** The type a branch is rooted at (`Observation` in `(Observation.value as X)`), or undefined. */
export function branchRoot(part: string): string | undefined {
  const root = rootIdentifier(part);
  return root !== undefined && /^[A-Z]/.test(root) ? root : undefined;
}

/** Whether a branch rooted at `root` (see branchRoot) can apply to `resourceType`. */
export function rootApplies(root: string | undefined, resourceType: string): boolean {
  return root === undefined || root === resourceType || UNIVERSAL_ROOTS.has(root);
}

/** The identifier a branch starts with, after any opening parentheses: `(Observation.value as X)` -> Observation. */
function rootIdentifier(part: string): string | undefined {
  const m = /^[(\s]*([A-Za-z_][A-Za-z0-9_]*)/.exec(part);
  return m ? m[1] : undefined;
}

/** `as(DateTime)`: R4 composites use System type names where the element holds a FHIR primitive. */
const SYSTEM_TO_FHIR: Record<string, string> = {
  Boolean: 'boolean',
  String: 'string',
  Integer: 'integer',
  Decimal: 'decimal',
  Date: 'date',
  DateTime: 'dateTime',
  Time: 'time',
};

function fhirTypeName(name: string): string {
  const bare = name.startsWith('FHIR.') ? name.slice(5) : name;
  return SYSTEM_TO_FHIR[bare] ?? bare;
}

/** Rewrites one union branch for evaluation (see the module comment). */
export function prepareBranch(part: string): PreparedBranch {
  let hit = prepared.get(part);
  if (!hit) {
    hit = Object.freeze(prepareUncached(part));
    prepared.set(part, hit);
  }
  return hit;
}

/** Branches repeat across types and parameters (`Resource.id`, `Observation.code`): prepare each once. */
const prepared = new Map<string, PreparedBranch>();

function prepareUncached(part: string): PreparedBranch {
  let expression = part.trim();
  let targetType: string | undefined;
  const resolveIs = /^(.*)\.where\(\s*resolve\(\)\s+is\s+([A-Za-z][A-Za-z0-9]*)\s*\)$/s.exec(expression);
  if (resolveIs && !resolveIs[1].includes('resolve()')) {
    expression = resolveIs[1];
    targetType = resolveIs[2];
  }
  expression = rewriteAs(expression);
  const out: PreparedBranch = { expression };
  if (targetType) {
    out.targetType = targetType;
  }
  const requires = requiredElement(expression);
  if (requires) {
    out.requires = requires;
  }
  return out;
}

/** Functions that return an empty collection for an empty input, whatever their arguments. */
const EMPTY_PRESERVING = new Set([
  'where',
  'ofType',
  'as',
  'extension',
  'first',
  'last',
  'tail',
  'skip',
  'take',
  'single',
  'distinct',
  'select',
  'repeat',
  'children',
  'descendants',
  'resolve',
]);

/**
 * The first element a plain navigation chain reads (`[Type.]element(.step)*`, steps being element
 * names, `[n]` indexes and empty-preserving functions), optionally wrapped as `(chain).more`. For
 * anything else (operators, literals, `exists()`, `%resource`, unions) undefined.
 */
export function requiredElement(expression: string): string | undefined {
  let s = expression.trim();
  if (s.startsWith('(')) {
    const close = matchingClose(s, 0);
    if (close === undefined) {
      return undefined;
    }
    const rest = s.slice(close + 1);
    if (rest !== '' && (!rest.startsWith('.') || !isPlainChain(rest.slice(1)))) {
      return undefined;
    }
    s = s.slice(1, close).trim();
  }
  if (!isPlainChain(s)) {
    return undefined;
  }
  const m = /^([A-Za-z][A-Za-z0-9]*)(?:\.([A-Za-z][A-Za-z0-9]*))?/.exec(s);
  if (!m) {
    return undefined;
  }
  // The element must be read by navigation, or by `extension(url)`, which reads `extension`.
  if (/^[A-Z]/.test(m[1])) {
    // Rooted at a type: the element is the next step.
    const next = m[2];
    return next && /^[a-z]/.test(next) && (s[m[0].length] !== '(' || next === 'extension') ? next : undefined;
  }
  return s[m[1].length] !== '(' || m[1] === 'extension' ? m[1] : undefined;
}

/** `a.b.where(...)[0].c`: identifiers, dots, `[n]`, and calls to empty-preserving functions only. */
function isPlainChain(s: string): boolean {
  let i = 0;
  while (i < s.length) {
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i));
    if (!id) {
      return false;
    }
    i += id[0].length;
    if (s[i] === '(') {
      if (!EMPTY_PRESERVING.has(id[0])) {
        return false;
      }
      const close = matchingClose(s, i);
      if (close === undefined) {
        return false;
      }
      i = close + 1;
    }
    while (s[i] === '[') {
      const idx = /^\[\d+\]/.exec(s.slice(i));
      if (!idx) {
        return false;
      }
      i += idx[0].length;
    }
    if (i === s.length) {
      return true;
    }
    if (s[i] !== '.') {
      return false;
    }
    i++;
  }
  return false;
}

/** Index of the `)` matching the `(` at `open`, skipping string literals. */
function matchingClose(s: string, open: number): number | undefined {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === "'" || c === '`' || c === '"') {
      i = skipQuoted(s, i);
    } else if (c === '(') {
      depth++;
    } else if (c === ')') {
      depth--;
      if (depth === 0) {
        return i;
      }
    }
  }
  return undefined;
}

/**
 * `.as(T)` -> `.ofType(T)`; `operand as T` -> `operand.ofType(T)` when the operand is a plain
 * invocation chain (`A.b.c`, `A.b.where(x='y')`) delimited by `(`/`)` or the branch ends. Anything
 * else is left for the engine.
 */
export function rewriteAs(expression: string): string {
  let out = expression.replace(/\.as\(\s*([A-Za-z.]+)\s*\)/g, (_m, t: string) => `.ofType(${fhirTypeName(t)})`);
  out = out.replace(/\.ofType\(\s*([A-Za-z.]+)\s*\)/g, (_m, t: string) => `.ofType(${fhirTypeName(t)})`);
  // Operator form, innermost first; each pass rewrites one occurrence.
  for (let guard = 0; guard < 20; guard++) {
    const next = rewriteOneAsOperator(out);
    if (next === out) {
      break;
    }
    out = next;
  }
  return out;
}

function rewriteOneAsOperator(s: string): string {
  const re = /\s+as\s+([A-Za-z][A-Za-z0-9.]*)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    if (insideQuotes(s, m.index)) {
      continue;
    }
    const opStart = operandStart(s, m.index);
    if (opStart === undefined) {
      continue;
    }
    const before = s.slice(0, opStart).trimEnd();
    const after = s.slice(m.index + m[0].length).trimStart();
    const leftOk = before === '' || before.endsWith('(');
    const rightOk = after === '' || after.startsWith(')');
    if (!leftOk || !rightOk) {
      continue;
    }
    return s.slice(0, opStart) + s.slice(opStart, m.index) + `.ofType(${fhirTypeName(m[1])})` + s.slice(m.index + m[0].length);
  }
  return s;
}

/** Start of the invocation chain ending just before `end`, or undefined if it is not one. */
function operandStart(s: string, end: number): number | undefined {
  let i = end - 1;
  while (i >= 0) {
    const c = s[i];
    if (c === ')' || c === ']') {
      const open = matchingOpen(s, i);
      if (open === undefined) {
        return undefined;
      }
      i = open - 1;
    } else if (/[A-Za-z0-9_.%$`]/.test(c)) {
      i--;
    } else {
      break;
    }
  }
  const start = i + 1;
  return start < end && /[A-Za-z%$`]/.test(s[start]) ? start : undefined;
}

function matchingOpen(s: string, close: number): number | undefined {
  const closeChar = s[close];
  const openChar = closeChar === ')' ? '(' : '[';
  let depth = 0;
  for (let i = close; i >= 0; i--) {
    if (s[i] === closeChar) {
      depth++;
    } else if (s[i] === openChar) {
      depth--;
      if (depth === 0) {
        return i;
      }
    }
  }
  return undefined;
}

function insideQuotes(s: string, index: number): boolean {
  let open = false;
  for (let i = 0; i < index; i++) {
    if (s[i] === '\\') {
      i++;
    } else if (s[i] === "'") {
      open = !open;
    }
  }
  return open;
}
