/**
 * Compiles a bot's TypeScript/JavaScript sources into one self-contained script for the bot sandbox.
 *
 * The sandbox runs bot code in a `vm` context with no `require`, `module` or `process`, so every file
 * the entry reaches through relative imports is transpiled to CommonJS (`ts.transpileModule`, one file
 * at a time, no type checking) and wrapped in a module function inside one IIFE. The script's
 * completion value is the entry module's `exports`. Relative imports are resolved here, at compile
 * time, into a per-module table the bundle's tiny `require` looks up; anything else a module would
 * load at run time (a package, a Node built-in, a computed specifier) is a compile error, while
 * type-only imports (of anything) are erased by the transpiler and allowed.
 *
 * The output depends only on the sources: modules are emitted sorted by path with LF newlines, so
 * the same sources always give byte-identical code (deploy compares hashes).
 */
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import type * as TypeScript from 'typescript';

/** A bot compile failure; `message` lists every problem as `file:line:col message`. */
export class BotCompileError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'BotCompileError';
    this.problems = problems;
  }
}

/** Where the bundler gets a bot file's text: `undefined` when the (normalized, relative) path is not one of the bot's files. */
type SourceReader = (file: string) => string | undefined;

interface CompiledModule {
  code: string;
  /** Import specifier as written -> bundled file it resolves to. */
  deps: Map<string, string>;
}

/** One place a module loads another at run time, as found in the source. */
interface ImportSite {
  /** The specifier, or `undefined` when it is computed (`require(name)`, `import(name)`). */
  specifier: string | undefined;
  pos: number;
  /** `import type ...` / `export type ... from`: never loaded, but still a place the specifier is named. */
  typeOnly: boolean;
}

let typescript: typeof TypeScript | undefined;
/**
 * The TypeScript compiler, loaded on the first compilation: it adds ~50 MB to a process, which a
 * server that never compiles a bot (`--no-bots`, or bots already deployed) does not need.
 */
function loadTypeScript(): typeof TypeScript {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, on purpose
  typescript ??= require('typescript') as typeof TypeScript;
  return typescript;
}

function compilerOptions(ts: typeof TypeScript): TypeScript.CompilerOptions {
  return { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: false, newLine: ts.NewLineKind.LineFeed };
}

const CODE_FILE = /\.(ts|js)$/;
const DECLARATION_FILE = /\.d\.ts$/;
const TEST_FILE = /\.(test|spec)\.(ts|js)$/;

/** Compiles a set of TypeScript/JavaScript sources (relative path -> text, e.g. 'index.ts', 'lib/rules.ts') starting at `entry` into one bundle. */
export function bundleSources(files: Record<string, string>, entry = 'index.ts'): string {
  const byPath = new Map<string, string>();
  const problems: string[] = [];
  for (const key of Object.keys(files).sort()) {
    const file = normalizeRelative(key);
    if (file === undefined) {
      problems.push(`${key}:1:1 file path must be relative to the bot's folder`);
    } else if (byPath.has(file)) {
      problems.push(`${key}:1:1 file path names the same file as another`);
    } else {
      byPath.set(file, files[key]);
    }
  }
  if (problems.length > 0) {
    throw new BotCompileError(problems);
  }
  return bundle((file) => byPath.get(file), entry).code;
}

/** Reads a bot folder (entry index.ts; follows relative imports; ignores *.test.ts and *.spec.ts) and bundles it. */
export function bundleBotDir(dir: string): { code: string; files: Record<string, string> } {
  const root = fs.realpathSync(path.resolve(dir));
  const read: SourceReader = (file) => {
    if (TEST_FILE.test(file)) {
      return undefined;
    }
    const full = path.join(root, ...file.split('/'));
    let real: string;
    try {
      real = fs.realpathSync(full);
    } catch {
      return undefined;
    }
    // Refuses anything (a symlink included) that lands outside the folder.
    const inside = path.relative(root, real);
    if (inside === '' || inside === '..' || inside.startsWith(`..${path.sep}`) || path.isAbsolute(inside)) {
      return undefined;
    }
    if (!fs.statSync(real).isFile()) {
      return undefined;
    }
    return fs.readFileSync(real, 'utf8');
  };
  return bundle(read, 'index.ts');
}

/** Walks the import graph from `entry`, compiling each file once, and assembles the bundle or throws every problem found. */
function bundle(read: SourceReader, entryPath: string): { code: string; files: Record<string, string> } {
  const entry = normalizeRelative(entryPath);
  const entryText = entry === undefined ? undefined : read(entry);
  if (entry === undefined || entryText === undefined) {
    throw new BotCompileError([`${entryPath}:1:1 entry file not found`]);
  }
  const sources = new Map<string, string>([[entry, entryText]]);
  const modules = new Map<string, CompiledModule>();
  const problems: string[] = [];
  const queue = [entry];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    const compiled = compileModule(file, sources.get(file) ?? '', read, problems);
    modules.set(file, compiled);
    for (const target of compiled.deps.values()) {
      if (!sources.has(target)) {
        sources.set(target, read(target) ?? '');
        queue.push(target);
      }
    }
  }
  if (problems.length > 0) {
    throw new BotCompileError(problems);
  }

  const names = [...modules.keys()].sort();
  const definitions = names.map((name) => {
    const { code, deps } = modules.get(name)!;
    const table = [...deps.entries()].sort(([a], [b]) => compare(a, b)).map(([spec, target]) => `${JSON.stringify(spec)}: ${JSON.stringify(target)}`);
    return `${JSON.stringify(name)}: [function (exports, require, module) {\n${code}\n}, {${table.length === 0 ? '' : ` ${table.join(', ')} `}}],`;
  });
  const code = [
    '// continuum bot bundle',
    '(function () {',
    'const definitions = {',
    ...definitions,
    '};',
    'const cache = Object.create(null);',
    'function load(name) {',
    '  const cached = cache[name];',
    '  if (cached !== undefined) {',
    '    return cached.exports;',
    '  }',
    '  const definition = definitions[name];',
    '  const module = { exports: {} };',
    '  cache[name] = module;',
    '  const require = function (specifier) {',
    '    const target = Object.hasOwn(definition[1], specifier) ? definition[1][specifier] : undefined;',
    '    if (target === undefined) {',
    `      throw new Error("Cannot find module '" + String(specifier) + "' from '" + name + "'");`,
    '    }',
    '    return load(target);',
    '  };',
    '  try {',
    '    definition[0].call(module.exports, module.exports, require, module);',
    '  } catch (err) {',
    '    delete cache[name];',
    '    throw err;',
    '  }',
    '  return module.exports;',
    '}',
    `return load(${JSON.stringify(entry)});`,
    '})();',
    '',
  ].join('\n');
  const files: Record<string, string> = {};
  for (const name of names) {
    files[name] = sources.get(name)!;
  }
  return { code, files };
}

/** Transpiles one file to CommonJS and resolves its run-time imports, adding any problems to `problems`. */
function compileModule(file: string, text: string, read: SourceReader, problems: string[]): CompiledModule {
  const ts = loadTypeScript();
  const deps = new Map<string, string>();
  const result = ts.transpileModule(text, { compilerOptions: compilerOptions(ts), fileName: file, reportDiagnostics: true });
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, false, file.endsWith('.js') ? ts.ScriptKind.JS : ts.ScriptKind.TS);
  const at = (pos: number): string => {
    const { line, character } = source.getLineAndCharacterOfPosition(pos);
    return `${file}:${line + 1}:${character + 1}`;
  };

  const before = problems.length;
  const diagnostics = result.diagnostics ?? [];
  for (const d of diagnostics) {
    problems.push(`${d.start === undefined ? `${file}:1:1` : at(d.start)} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
  }
  if (diagnostics.some((d) => d.category === ts.DiagnosticCategory.Error)) {
    return { code: result.outputText, deps };
  }

  const sites = findImportSites(source);
  for (const pos of findModuleLevelOnly(source)) {
    problems.push(`${at(pos.pos)} ${pos.what} is not supported in bots (bots are compiled to CommonJS)`);
  }
  for (const site of sites) {
    if (site.specifier === undefined) {
      problems.push(`${at(site.pos)} bots cannot import a computed module name (only relative imports of the bot's own files)`);
    }
  }

  // Which imports survive to run time is decided by the transpiler (type-only ones are erased);
  // where they were written comes from the source.
  const output = ts.createSourceFile(`${file}.js`, result.outputText, ts.ScriptTarget.ES2022, false, ts.ScriptKind.JS);
  const required = new Set<string>();
  for (const site of findImportSites(output)) {
    if (site.specifier !== undefined) {
      required.add(site.specifier);
    }
  }
  const located = [...required].map((specifier) => {
    const site = sites.find((s) => s.specifier === specifier && !s.typeOnly) ?? sites.find((s) => s.specifier === specifier);
    return { specifier, pos: site?.pos ?? 0 };
  });
  located.sort((a, b) => a.pos - b.pos || compare(a.specifier, b.specifier));
  for (const { specifier, pos } of located) {
    const where = at(pos);
    if (!isRelative(specifier)) {
      problems.push(`${where} bots cannot import '${specifier}' (only relative imports of the bot's own files)`);
      continue;
    }
    const joined = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
    if (joined === '..' || joined.startsWith('../')) {
      problems.push(`${where} bots cannot import '${specifier}' (it is outside the bot's folder)`);
      continue;
    }
    const target = candidates(joined, specifier.endsWith('/')).find((c) => read(c) !== undefined);
    if (target === undefined) {
      problems.push(`${where} cannot find '${specifier}' among the bot's files`);
      continue;
    }
    deps.set(specifier, target);
  }

  // A last guard: whatever the checks above missed must not reach the sandbox as a syntax error.
  if (problems.length === before) {
    try {
      new vm.Script(`(function (exports, require, module) {\n${result.outputText}\n})`, { filename: file });
    } catch (err) {
      problems.push(`${file}:1:1 compiled code is not valid JavaScript: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { code: result.outputText, deps };
}

/** Every import, re-export, `import x = require()`, `require()` and `import()` in a file, with its position. */
function findImportSites(source: TypeScript.SourceFile): ImportSite[] {
  const ts = loadTypeScript();
  const sites: ImportSite[] = [];
  const visit = (node: TypeScript.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined) {
      if (ts.isStringLiteral(node.moduleSpecifier)) {
        const typeOnly = ts.isImportDeclaration(node) ? node.importClause?.isTypeOnly === true : node.isTypeOnly;
        sites.push({ specifier: node.moduleSpecifier.text, pos: node.getStart(source), typeOnly });
      }
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const expr = node.moduleReference.expression;
      sites.push({ specifier: ts.isStringLiteralLike(expr) ? expr.text : undefined, pos: node.getStart(source), typeOnly: node.isTypeOnly });
    } else if (ts.isCallExpression(node) && isLoaderCall(node)) {
      const arg = node.arguments[0];
      sites.push({ specifier: arg !== undefined && ts.isStringLiteralLike(arg) ? arg.text : undefined, pos: node.getStart(source), typeOnly: false });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return sites;
}

/** `require(...)` or `import(...)`. */
function isLoaderCall(node: TypeScript.CallExpression): boolean {
  const ts = loadTypeScript();
  if (node.expression.kind === ts.SyntaxKind.ImportKeyword) {
    return true;
  }
  return ts.isIdentifier(node.expression) && node.expression.text === 'require' && node.arguments.length === 1;
}

/** Module-only syntax a CommonJS module function cannot run: `import.meta` and top-level `await`. */
function findModuleLevelOnly(source: TypeScript.SourceFile): { what: string; pos: number }[] {
  const ts = loadTypeScript();
  const found: { what: string; pos: number }[] = [];
  const visit = (node: TypeScript.Node, inFunction: boolean): void => {
    if (ts.isMetaProperty(node) && node.keywordToken === ts.SyntaxKind.ImportKeyword) {
      found.push({ what: 'import.meta', pos: node.getStart(source) });
    } else if (!inFunction && ts.isAwaitExpression(node)) {
      found.push({ what: 'top-level await', pos: node.getStart(source) });
    } else if (!inFunction && ts.isForOfStatement(node) && node.awaitModifier !== undefined) {
      found.push({ what: 'top-level for await', pos: node.getStart(source) });
    } else if (!inFunction && ts.isVariableDeclarationList(node) && (node.flags & ts.NodeFlags.AwaitUsing) === ts.NodeFlags.AwaitUsing) {
      found.push({ what: 'top-level await using', pos: node.getStart(source) });
    }
    const nested = inFunction || ts.isFunctionLike(node) || ts.isClassStaticBlockDeclaration(node);
    ts.forEachChild(node, (child) => visit(child, nested));
  };
  visit(source, false);
  return found;
}

/** The files a resolved relative path may name, in the order tried (TypeScript's: `./x.js` means `x.ts` first). */
function candidates(joined: string, directoryOnly: boolean): string[] {
  const base = joined === '.' ? '' : joined;
  const list: string[] = [];
  if (!directoryOnly && base !== '') {
    if (base.endsWith('.js')) {
      list.push(`${base.slice(0, -3)}.ts`);
    }
    if (CODE_FILE.test(base)) {
      list.push(base);
    }
    list.push(`${base}.ts`, `${base}.js`);
  }
  const prefix = base === '' ? '' : `${base}/`;
  list.push(`${prefix}index.ts`, `${prefix}index.js`);
  return list.filter((c, i) => !DECLARATION_FILE.test(c) && list.indexOf(c) === i);
}

/** `./x`, `../x`, `.` and `..` are relative; everything else (packages, `node:` built-ins, absolute paths) is not. */
function isRelative(specifier: string): boolean {
  return specifier === '.' || specifier === '..' || specifier.startsWith('./') || specifier.startsWith('../');
}

/** A file path as a normalized POSIX path relative to the bot's folder, or `undefined` when it is absolute or escapes it. */
function normalizeRelative(file: string): string | undefined {
  const slashed = file.replace(/\\/g, '/');
  if (slashed.startsWith('/') || /^[A-Za-z]:/.test(slashed)) {
    return undefined;
  }
  const normalized = path.posix.normalize(slashed);
  if (normalized === '.' || normalized === '..' || normalized.startsWith('../') || normalized.endsWith('/')) {
    return undefined;
  }
  return normalized;
}

/** Locale-independent string order, so output never depends on the server's locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
