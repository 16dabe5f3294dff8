import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { BotCompileError, bundleBotDir, bundleSources } from '../../../src/bots/compile';

type Exports = Record<string, unknown>;

/** Runs a bundle the way the sandbox does: a bare context, the script's completion value is the entry's exports. */
function run(code: string, globals: Record<string, unknown> = {}): Exports {
  const ctx = vm.createContext({ ...globals });
  return new vm.Script(code).runInContext(ctx) as Exports;
}

function call<T>(exports: Exports, name: string, ...args: unknown[]): T {
  const fn = exports[name];
  if (typeof fn !== 'function') {
    throw new Error(`export ${name} is not a function`);
  }
  return (fn as (...a: unknown[]) => T)(...args);
}

/** The problems of the compile failure `fn` throws. */
function problemsOf(fn: () => unknown): BotCompileError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BotCompileError);
    return err as BotCompileError;
  }
  throw new Error('expected a BotCompileError');
}

describe('bundleSources', () => {
  test('a single-file bot: the completion value is its exports, and the handler runs', async () => {
    const code = bundleSources({
      'index.ts': [
        'interface Event { input: { n: number } }',
        'export async function handler(event: Event, ctx: { tag: string }): Promise<string> {',
        '  return `${ctx.tag}:${event.input.n * 2}`;',
        '}',
      ].join('\n'),
    });
    expect(code.split('\n')[0]).toBe('// continuum bot bundle');
    const exports = run(code);
    await expect(call<Promise<string>>(exports, 'handler', { input: { n: 21 } }, { tag: 't' })).resolves.toBe('t:42');
  });

  test('named, default, namespace and export * imports across nested folders, with ./dir index resolution', async () => {
    const code = bundleSources({
      'index.ts': [
        "import greet, { shout } from './lib/text';",
        "import * as all from './lib';",
        "import { LIMIT, clamp } from './shared/index.js';",
        'export async function handler(event: { name: string; n: number }) {',
        '  return { greeting: greet(event.name), loud: shout(event.name), clamped: clamp(event.n), limit: LIMIT, fromIndex: all.square(3), reexported: all.shout("x") };',
        '}',
      ].join('\n'),
      'lib/index.ts': "export * from './text';\nexport * from './math';\n",
      'lib/text.ts': "import { suffix } from '../shared/punctuation';\nexport default function greet(name: string): string { return 'hello ' + name + suffix; }\nexport function shout(s: string): string { return s.toUpperCase() + suffix; }\n",
      'lib/math.ts': 'export const square = (n: number): number => n * n;\n',
      'shared/index.ts': "import { LIMIT } from './limits';\nexport { LIMIT };\nexport function clamp(n: number): number { return Math.min(n, LIMIT); }\n",
      'shared/limits.ts': 'export const LIMIT = 10;\n',
      'shared/punctuation.ts': "export const suffix = '!';\n",
    });
    const result = await call<Promise<unknown>>(run(code), 'handler', { name: 'ann', n: 99 });
    expect(result).toEqual({ greeting: 'hello ann!', loud: 'ANN!', clamped: 10, limit: 10, fromIndex: 9, reexported: 'X!' });
  });

  test('cyclic imports behave like CommonJS: each module is evaluated once and sees the other\'s live bindings', () => {
    const code = bundleSources({
      'index.ts': "import { isEven } from './even';\nimport { evaluations } from './count';\nexport const handler = (n: number) => [isEven(n), evaluations()];\n",
      'even.ts': "import { isOdd } from './odd';\nimport { tick } from './count';\ntick();\nexport function isEven(n: number): boolean { return n === 0 ? true : isOdd(n - 1); }\n",
      'odd.ts': "import { isEven } from './even';\nimport { tick } from './count';\ntick();\nexport function isOdd(n: number): boolean { return n === 0 ? false : isEven(n - 1); }\n",
      'count.ts': 'let n = 0;\nexport function tick(): void { n++; }\nexport function evaluations(): number { return n; }\n',
    });
    const exports = run(code);
    expect(call(exports, 'handler', 7)).toEqual([false, 2]);
    expect(call(exports, 'handler', 4)).toEqual([true, 2]);
  });

  test('enums, classes and type-only imports: the types are erased and never bundled', () => {
    const code = bundleSources({
      'index.ts': [
        "import type { Shape } from './types';",
        "import { Kind } from './kinds';",
        "import { Area } from './area';",
        "import type { Patient } from '@medplum/fhirtypes';",
        "import { type Options } from './options';",
        'export function handler(shape: Shape, p: Patient, o: Options): string {',
        '  return `${Kind[shape.kind]}:${new Area(shape).value()}:${p.id}:${o.verbose}`;',
        '}',
      ].join('\n'),
      'types.ts': "import type { Kind } from './kinds';\nexport interface Shape { kind: Kind; size: number }\nthrow new Error('types.ts must not run');\n",
      'options.ts': "export interface Options { verbose: boolean }\nthrow new Error('options.ts must not run');\n",
      'kinds.ts': 'export enum Kind { Square = 1, Circle }\n',
      'area.ts': [
        "import { Kind } from './kinds';",
        "import type { Shape } from './types';",
        'export class Area {',
        '  static readonly PI = 3;',
        '  #shape: Shape;',
        '  constructor(shape: Shape) { this.#shape = shape; }',
        '  value(): number { return this.#shape.kind === Kind.Square ? this.#shape.size ** 2 : Area.PI * this.#shape.size ** 2; }',
        '}',
      ].join('\n'),
    });
    expect(code).not.toContain('types.ts');
    expect(code).not.toContain('options.ts');
    expect(code).not.toContain('@medplum/fhirtypes');
    const exports = run(code);
    expect(call(exports, 'handler', { kind: 1, size: 3 }, { id: 'p1' }, { verbose: true })).toBe('Square:9:p1:true');
    expect(call(exports, 'handler', { kind: 2, size: 2 }, { id: 'p2' }, { verbose: false })).toBe('Circle:12:p2:false');
  });

  test('JavaScript files, export =, import = require, and dynamic import of a bundled file work', async () => {
    const code = bundleSources({
      'index.ts': [
        "import legacy = require('./legacy');",
        "import helper = require('./helper.js');",
        'export async function handler(): Promise<number[]> {',
        "  const lazy = await import('./lazy');",
        '  return [legacy.answer, helper(1), lazy.value];',
        '}',
      ].join('\n'),
      'legacy.js': 'module.exports = { answer: 42 };\n',
      'helper.ts': 'function helper(n: number): number { return n + 1; }\nexport = helper;\n',
      'lazy.ts': 'export const value = 7;\n',
    });
    await expect(call<Promise<number[]>>(run(code), 'handler')).resolves.toEqual([42, 2, 7]);
  });

  test('only the bundled files are loaded: no external require survives and the sandbox needs no Node globals', () => {
    const code = bundleSources({
      'index.ts': "import { f } from './f';\nimport type { Stats } from 'node:fs';\nexport const handler = (s?: Stats) => f(s);\n",
      'f.ts': 'export const f = (s: unknown) => [typeof s, typeof require, typeof module];\n',
      'unused.ts': "import fs from 'node:fs';\nexport const x = fs;\n",
    });
    expect(code).not.toMatch(/require\(\s*["'`](?!\.)/);
    expect(code).not.toContain('node:fs');
    expect(code).not.toContain('unused.ts');
    expect(code).not.toMatch(/\b(process|Buffer|__dirname|__filename)\b/);
    // The context has no require/module/process: a bundle-level reference to one would throw a ReferenceError.
    const exports = run(code);
    expect(call(exports, 'handler')).toEqual(['undefined', 'function', 'object']);
  });

  test('a runtime error in a module is not cached as success, and the script can be run again', () => {
    const code = bundleSources({
      'index.ts': "import { f } from './f';\nexport const handler = () => f;\n",
      'f.ts': "export const f = 1;\nif ((globalThis as { failNow?: boolean }).failNow) { throw new Error('boom'); }\n",
    });
    expect(() => run(code, { failNow: true })).toThrow('boom');
    expect(call(run(code), 'handler')).toBe(1);
  });

  test('the same sources give byte-identical code whatever order the files are listed in', () => {
    const a = { 'index.ts': "import { b } from './b';\nimport { c } from './c';\nexport const handler = () => b + c;\n", 'b.ts': 'export const b = 1;\n', 'c.ts': 'export const c = 2;\n' };
    const b = { 'c.ts': a['c.ts'], 'b.ts': a['b.ts'], 'index.ts': a['index.ts'] };
    const first = bundleSources(a);
    expect(bundleSources(a)).toBe(first);
    expect(bundleSources(b)).toBe(first);
    expect(bundleSources({ ...a, 'c.ts': 'export const c = 3;\n' })).not.toBe(first);
    expect(call(run(first), 'handler')).toBe(3);
  });

  test('a different entry file can be named', () => {
    const code = bundleSources({ 'main.ts': "export { handler } from './h';\n", 'h.ts': 'export const handler = () => "main";\n' }, 'main.ts');
    expect(call(run(code), 'handler')).toBe('main');
  });
});

describe('bundleSources errors', () => {
  test('a Node built-in import is refused at the import, with file:line:col', () => {
    const err = problemsOf(() => bundleSources({ 'index.ts': "import fs from 'node:fs';\nexport const handler = () => fs.readFileSync('/etc/passwd');\n" }));
    expect(err.problems).toEqual(["index.ts:1:1 bots cannot import 'node:fs' (only relative imports of the bot's own files)"]);
    expect(err.message).toBe(err.problems.join('\n'));
  });

  test('package imports and require() in a helper file are refused, every problem listed', () => {
    const err = problemsOf(() =>
      bundleSources({
        'index.ts': "import { x } from './lib/helper';\nexport const handler = () => x;\n",
        'lib/helper.ts': "import _ from 'lodash';\n\nexport const x = _.noop;\nexport const y = require('child_process');\nexport { z } from '@scope/pkg';\n",
      }),
    );
    expect(err.problems).toEqual([
      "lib/helper.ts:1:1 bots cannot import 'lodash' (only relative imports of the bot's own files)",
      "lib/helper.ts:4:18 bots cannot import 'child_process' (only relative imports of the bot's own files)",
      "lib/helper.ts:5:1 bots cannot import '@scope/pkg' (only relative imports of the bot's own files)",
    ]);
  });

  test('a computed require or import() is refused', () => {
    const err = problemsOf(() => bundleSources({ 'index.ts': 'export async function handler(name: string) {\n  return import(name);\n}\n' }));
    expect(err.problems).toEqual(["index.ts:2:10 bots cannot import a computed module name (only relative imports of the bot's own files)"]);
  });

  test('a relative import of a file that is not among the sources, or outside the folder, is refused', () => {
    const err = problemsOf(() =>
      bundleSources({
        'index.ts': "import { a } from './missing';\nimport { b } from '../outside';\nimport { c } from './lib/../../escape';\nexport const handler = () => [a, b, c];\n",
      }),
    );
    expect(err.problems).toEqual([
      "index.ts:1:1 cannot find './missing' among the bot's files",
      "index.ts:2:1 bots cannot import '../outside' (it is outside the bot's folder)",
      "index.ts:3:1 bots cannot import './lib/../../escape' (it is outside the bot's folder)",
    ]);
  });

  test('TypeScript syntax errors report file:line:col from the diagnostics', () => {
    const err = problemsOf(() =>
      bundleSources({
        'index.ts': "import { x } from './bad';\nexport const handler = () => x;\n",
        'bad.ts': 'export const x = 1;\nexport const y = ;\nexport function f( {\n',
      }),
    );
    expect(err.problems[0]).toBe('bad.ts:2:18 Expression expected.');
    expect(err.problems.length).toBeGreaterThan(1);
    expect(err.problems.every((p) => /^bad\.ts:\d+:\d+ \S/.test(p))).toBe(true);
  });

  test('TypeScript syntax in a .js file is an error', () => {
    const err = problemsOf(() => bundleSources({ 'index.js': 'const x: number = 1;\nmodule.exports = { x };\n' }, 'index.js'));
    expect(err.problems).toEqual(['index.js:1:10 Type annotations can only be used in TypeScript files.']);
  });

  test('top-level await and import.meta are refused (a CommonJS module function cannot run them)', () => {
    const err = problemsOf(() => bundleSources({ 'index.ts': 'const v = await Promise.resolve(1);\nexport const handler = () => [v, import.meta.url];\nexport async function ok() { await v; }\n' }));
    expect(err.problems).toEqual([
      'index.ts:1:11 top-level await is not supported in bots (bots are compiled to CommonJS)',
      'index.ts:2:34 import.meta is not supported in bots (bots are compiled to CommonJS)',
    ]);
  });

  test('a missing entry, or a file path outside the folder, is refused', () => {
    expect(problemsOf(() => bundleSources({ 'main.ts': '' })).problems).toEqual(['index.ts:1:1 entry file not found']);
    expect(problemsOf(() => bundleSources({ 'index.ts': '', '../x.ts': '' })).problems).toEqual(["../x.ts:1:1 file path must be relative to the bot's folder"]);
    expect(problemsOf(() => bundleSources({ 'index.ts': '' }, '../index.ts')).problems).toEqual(['../index.ts:1:1 entry file not found']);
  });
});

describe('bundleBotDir', () => {
  let dir: string;
  let outside: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'continuum-bot-'));
    outside = fs.mkdtempSync(path.join(os.tmpdir(), 'continuum-outside-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(outside, { recursive: true, force: true });
  });

  test('bundles index.ts and the files it imports, never the test files', async () => {
    fs.writeFileSync(path.join(dir, 'index.ts'), "import { rule } from './rules';\nexport async function handler(event: { input: number }) {\n  return rule(event.input);\n}\n");
    fs.writeFileSync(path.join(dir, 'rules.ts'), 'export function rule(n: number): string {\n  return n > 140 ? "high" : "ok";\n}\n');
    fs.writeFileSync(path.join(dir, 'index.test.ts'), "import { handler } from './index';\ntest('x', async () => expect(await handler({ input: 1 })).toBe('ok'));\n");
    fs.writeFileSync(path.join(dir, 'rules.spec.ts'), "import { rule } from './rules';\n");
    fs.writeFileSync(path.join(dir, 'unrelated.ts'), 'export const nope = 1;\n');

    const { code, files } = bundleBotDir(dir);
    expect(Object.keys(files)).toEqual(['index.ts', 'rules.ts']);
    expect(files['rules.ts']).toBe(fs.readFileSync(path.join(dir, 'rules.ts'), 'utf8'));
    expect(code).not.toContain('test(');
    expect(code).not.toContain('index.test');
    const exports = run(code);
    await expect(call<Promise<string>>(exports, 'handler', { input: 150 })).resolves.toBe('high');
    expect(bundleBotDir(dir).code).toBe(code);
    expect(bundleSources(files)).toBe(code);
  });

  test('resolves nested folders and ./dir to dir/index.ts', () => {
    fs.mkdirSync(path.join(dir, 'lib', 'deep'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'index.ts'), "import { v } from './lib';\nexport const handler = () => v;\n");
    fs.writeFileSync(path.join(dir, 'lib', 'index.ts'), "export { v } from './deep/value.js';\n");
    fs.writeFileSync(path.join(dir, 'lib', 'deep', 'value.ts'), 'export const v = "deep";\n');
    const { code, files } = bundleBotDir(dir);
    expect(Object.keys(files)).toEqual(['index.ts', 'lib/deep/value.ts', 'lib/index.ts']);
    expect(call(run(code), 'handler')).toBe('deep');
  });

  test('refuses imports of test files and of files outside the folder, symlinks included', () => {
    fs.writeFileSync(path.join(outside, 'secret.ts'), 'export const secret = 1;\n');
    fs.symlinkSync(path.join(outside, 'secret.ts'), path.join(dir, 'link.ts'));
    const rel = path.relative(dir, path.join(outside, 'secret')).split(path.sep).join('/');
    fs.writeFileSync(
      path.join(dir, 'index.ts'),
      `import { secret } from './link';\nimport { other } from '${rel}';\nimport { t } from './helpers.test';\nexport const handler = () => [secret, other, t];\n`,
    );
    fs.writeFileSync(path.join(dir, 'helpers.test.ts'), 'export const t = 1;\n');
    const err = problemsOf(() => bundleBotDir(dir));
    expect(err.problems).toEqual([
      "index.ts:1:1 cannot find './link' among the bot's files",
      `index.ts:2:1 bots cannot import '${rel}' (it is outside the bot's folder)`,
      "index.ts:3:1 cannot find './helpers.test' among the bot's files",
    ]);
  });

  test('a folder without index.ts is refused', () => {
    fs.writeFileSync(path.join(dir, 'main.ts'), 'export const handler = () => 1;\n');
    expect(problemsOf(() => bundleBotDir(dir)).problems).toEqual(['index.ts:1:1 entry file not found']);
  });
});

test('the TypeScript compiler is loaded by the first compilation, not by loading the server', () => {
  // In a child process (jest's own module registry would hide what Node loads). The compiled
  // server (`npm test` builds it first) loads every module a `serve --no-bots` process does.
  const dist = path.join(__dirname, '..', '..', '..', 'dist', 'src');
  const script = `
    const loaded = () => Object.keys(require.cache).some((k) => k.includes('/node_modules/typescript/'));
    require(${JSON.stringify(path.join(dist, 'server.js'))});
    require(${JSON.stringify(path.join(dist, 'cli.js'))});
    const { bundleSources } = require(${JSON.stringify(path.join(dist, 'bots', 'compile.js'))});
    const before = loaded();
    bundleSources({ 'index.ts': 'export async function handler(): Promise<number> { return 1; }' });
    console.log(JSON.stringify({ before, after: loaded() }));
  `;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  expect({ out: run.stdout.trim(), err: run.stderr }).toEqual({ out: JSON.stringify({ before: false, after: true }), err: '' });
}, 70_000);
