/**
 * jose 6 is published as an ES module only. Node 20.19+ loads it with require(). Jest's module
 * registry does not (under --experimental-vm-modules, which PGlite needs, it refuses ES modules
 * required from CommonJS, and it wraps `node:module` too), so jose is loaded through Node's own
 * require, reached with process.getBuiltinModule: the same module in tests and in production.
 */
import type * as Jose from 'jose';

const nodeModule = process.getBuiltinModule('node:module');
export const jose = nodeModule.createRequire(__filename)('jose') as typeof Jose;
export type { JWK, JWTVerifyGetKey } from 'jose';
