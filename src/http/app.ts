/**
 * The HTTP edge: Express 5 adapting HTTP to the FHIR core. It owns headers, content negotiation,
 * body limits and the error -> OperationOutcome mapping; it holds no FHIR logic.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Resource } from '@medplum/fhirtypes';
import { badRequest, FhirError, operationOutcome, STATUS_BY_CATEGORY } from '../errors';
import { auditRow, handle, route } from '../fhir/router';
import type { FhirMethod, FhirRequest, FhirResponse, PreferReturn, RequestContext } from '../fhir/types';
import { parseJsonBody } from '../util/json';
import { readBody } from './body';
import { bodyType, checkAcceptable, FHIR_JSON } from './negotiate';
import type { Principal } from '../auth/policy';
import type { AuditLog } from '../audit/audit-log';
import type { AuditRow } from '../store/api';

/** What the edge needs to build each request's context (for the caller the token names). */
export type ContextFactory = (baseUrl: string, principal?: Principal) => RequestContext;

/** Verifies a bearer token for `baseUrl`; throws (any error) when it is not acceptable. */
export type Authenticate = (token: string, baseUrl: string) => Promise<Principal>;

export interface AppOptions {
  /** Fixed public base URL; otherwise derived from the request. */
  baseUrl?: string;
  maxBodyBytes: number;
  maxJsonDepth: number;
  /** Called for 500s (bugs), with the request line. */
  logError?: (err: unknown, where: string) => void;
  /** Bearer-token verification; every FHIR request but GET /metadata needs a valid token. */
  authenticate: Authenticate;
  /** Where refused requests (no or bad token) are audited; the core audits the rest. */
  audit?: AuditLog;
  /**
   * Routes served before the FHIR API (the authorization server and discovery documents), all
   * under `prefixes`: other requests do not go through them (matching a FHIR request against
   * each of their layers was ~15 % of what a one-hit search allocated).
   */
  routes?: { prefixes: readonly string[]; router: (baseUrlOf: (req: Request) => string) => express.Router };
}

const METHODS = new Set<FhirMethod>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

function parsePrefer(header: string | undefined): Pick<FhirRequest, 'preferReturn' | 'preferHandling' | 'preferAsync'> {
  const out: Pick<FhirRequest, 'preferReturn' | 'preferHandling' | 'preferAsync'> = {};
  if (header === undefined) {
    return out;
  }
  for (const part of header.split(/[,;]/)) {
    const [k, v] = part.trim().split('=').map((s) => s?.trim().replace(/^"|"$/g, ''));
    if (k === 'return' && (v === 'minimal' || v === 'representation' || v === 'OperationOutcome')) {
      out.preferReturn = v as PreferReturn;
    } else if (k === 'handling' && (v === 'lenient' || v === 'strict')) {
      out.preferHandling = v;
    } else if (k === 'respond-async') {
      out.preferAsync = true;
    }
  }
  return out;
}

function header(req: Request, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Builds the FhirRequest; `_format` and `_pretty` are HTTP concerns and stop here. */
async function toFhirRequest(req: Request, options: AppOptions): Promise<{ fhirReq: FhirRequest; pretty: boolean }> {
  const method = req.method.toUpperCase() as FhirMethod;
  if (!METHODS.has(method)) {
    throw new FhirError('method-not-allowed', `HTTP method ${req.method} is not supported`);
  }
  const url = new URL(req.originalUrl, 'http://x');
  const query: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) {
    (query[k] ??= []).push(v);
  }
  const format = query._format?.[0];
  const pretty = query._pretty?.[0] === 'true';
  delete query._format;
  delete query._pretty;
  // Bulk Data files are NDJSON; billing reports may be CSV (`_format=csv`); everything else is JSON.
  const csvReport = /\$ccm-billing\/?$/.test(req.path);
  checkAcceptable(req, format, /^\/?\$export-file\//.test(req.path) ? ['application/fhir+ndjson', 'application/ndjson'] : csvReport ? ['text/csv', 'csv'] : []);
  if (csvReport && format !== undefined && /^(text\/)?csv$/i.test(format)) {
    query._format = ['csv'];
  }
  let path: string;
  try {
    path = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
  } catch {
    throw badRequest(`The URL path '${url.pathname}' is not valid percent-encoding`);
  }
  const fhirReq: FhirRequest = {
    method,
    path,
    query,
    ifMatch: header(req, 'if-match'),
    ifNoneExist: header(req, 'if-none-exist'),
    ifNoneMatch: header(req, 'if-none-match'),
    ifModifiedSince: header(req, 'if-modified-since'),
    ...parsePrefer(header(req, 'prefer')),
  };
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    const contentType = bodyType(req);
    const raw = await readBody(req, options.maxBodyBytes);
    if (raw.length > 0) {
      if (contentType === undefined) {
        throw new FhirError('unsupported-media-type', 'A request body needs a Content-Type (application/fhir+json)');
      }
      fhirReq.contentType = contentType;
      if (contentType === 'application/fhir+ndjson' || contentType === 'application/ndjson') {
        // NDJSON ($import): lines are parsed one by one by the operation, each with its own errors.
        fhirReq.body = raw.toString('utf8');
      } else if (contentType === 'application/x-www-form-urlencoded') {
        const form: Record<string, string[]> = {};
        for (const [k, v] of new URLSearchParams(raw.toString('utf8'))) {
          (form[k] ??= []).push(v);
        }
        fhirReq.body = form;
      } else {
        fhirReq.body = parseJsonBody(raw, options.maxJsonDepth);
      }
    }
  }
  return { fhirReq, pretty };
}

async function send(res: Response, baseUrl: string, out: FhirResponse, pretty: boolean): Promise<void> {
  res.status(out.status);
  for (const [name, value] of Object.entries(out.headers ?? {})) {
    res.setHeader(name, value);
  }
  if (out.stream) {
    res.setHeader('Content-Type', out.contentType ?? 'application/octet-stream');
    await out.stream(async (chunk) => {
      if (res.destroyed) {
        throw new Error('the client went away');
      }
      if (!res.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    });
    res.end();
    return;
  }
  if (out.body !== undefined) {
    res.setHeader('Content-Type', out.contentType ?? 'application/json');
    res.end(out.body);
    return;
  }
  if (out.versionId) {
    res.setHeader('ETag', `W/"${out.versionId}"`);
  }
  if (out.lastModified) {
    res.setHeader('Last-Modified', new Date(out.lastModified).toUTCString());
  }
  if (out.location && (out.status === 201 || out.status === 200)) {
    res.setHeader(out.status === 201 ? 'Location' : 'Content-Location', `${baseUrl}/${out.location}`);
  }
  if (out.status === 204 || out.status === 304 || (out.json === undefined && out.resource === undefined)) {
    res.end();
    return;
  }
  let body = out.json ?? JSON.stringify(out.resource, null, pretty ? 2 : undefined);
  if (pretty && out.json !== undefined) {
    body = JSON.stringify(JSON.parse(out.json) as Resource, null, 2);
  }
  res.setHeader('Content-Type', `${FHIR_JSON}; charset=utf-8`);
  res.end(body);
}

function sendError(res: Response, err: unknown, options: AppOptions, where: string, pretty: boolean): void {
  let fe: FhirError;
  if (err instanceof FhirError) {
    fe = err;
  } else {
    options.logError?.(err, where);
    fe = new FhirError('internal', operationOutcome('error', 'exception', 'Internal server error; the incident was logged'));
  }
  if (res.headersSent) {
    res.end();
    return;
  }
  for (const [name, value] of Object.entries(fe.headers)) {
    res.setHeader(name, value);
  }
  res.status(STATUS_BY_CATEGORY[fe.category]);
  res.setHeader('Content-Type', `${FHIR_JSON}; charset=utf-8`);
  res.end(JSON.stringify(fe.outcome, null, pretty ? 2 : undefined));
}

/** The audit row of a request refused before it reached the core (no or bad token). */
function refusedRow(ctx: RequestContext, req: Request, err: unknown): AuditRow {
  const method = req.method.toUpperCase() as FhirMethod;
  const path = req.path.replace(/^\/+|\/+$/g, '');
  let match: ReturnType<typeof route> | undefined;
  try {
    match = route(method, path);
  } catch {
    match = undefined; // not a FHIR route either; audited as 'unknown'
  }
  return auditRow(ctx, { method, path, query: {} }, match, 401, undefined, err);
}

/** The caller named by the request's bearer token; 401 without one or with a bad one. */
async function bearer(req: Request, baseUrl: string, authenticate: Authenticate): Promise<Principal> {
  const h = header(req, 'authorization');
  if (!h || !/^Bearer\s+\S+$/i.test(h)) {
    // RFC 6750 section 3: without any credentials, the challenge carries no error code.
    const err = new FhirError('unauthorized', 'This FHIR server needs an access token: send Authorization: Bearer <token> (see /.well-known/smart-configuration)');
    err.headers['WWW-Authenticate'] = 'Bearer realm="continuum"';
    throw err;
  }
  try {
    return await authenticate(h.replace(/^Bearer\s+/i, ''), baseUrl);
  } catch (cause) {
    const text = cause instanceof Error ? cause.message : 'The access token is not acceptable';
    const err = new FhirError('unauthorized', text);
    err.headers['WWW-Authenticate'] = `Bearer realm="continuum", error="invalid_token", error_description="${text.replace(/["\\]/g, '')}"`;
    throw err;
  }
}

/** Creates the Express application serving the FHIR API at the root. */
export function createApp(makeContext: ContextFactory, options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', false);

  const baseUrlOf = (req: Request): string => options.baseUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}`;

  const fhir = async (req: Request, res: Response): Promise<void> => {
    try {
      // Inside the try: this promise is not Express's to catch (the layer below does not await it).
      const baseUrl = baseUrlOf(req);
      // Only the CapabilityStatement is public; the token is checked before the body is read.
      const open = (req.method === 'GET' || req.method === 'HEAD') && /^\/*metadata\/*$/.test(req.path);
      let principal: Principal | undefined;
      try {
        principal = open ? undefined : await bearer(req, baseUrl, options.authenticate);
      } catch (err) {
        options.audit?.record(refusedRow(makeContext(baseUrl), req, err));
        throw err;
      }
      const { fhirReq, pretty } = await toFhirRequest(req, options);
      const out = await handle(fhirReq, makeContext(baseUrl, principal));
      await send(res, baseUrl, out, pretty);
    } catch (err) {
      sendError(res, err, options, `${req.method} ${req.originalUrl}`, /[?&]_pretty=true(&|$)/.test(req.originalUrl));
    }
  };

  // The routes of the authorization server, under their prefixes only.
  let owned: ((req: Request, res: Response, next: NextFunction) => void) | undefined;
  if (options.routes) {
    const { prefixes, router } = options.routes;
    const routes = router(baseUrlOf);
    // Express matches paths case-insensitively: so does this gate.
    const owns = (path: string): boolean => {
      const lower = path.toLowerCase();
      return prefixes.some((p) => lower === p || lower.startsWith(p + '/'));
    };
    owned = (req, res, next) => (owns(req.path) ? routes(req, res, next) : next());
  }

  // One layer for every request (each Express layer is a path match and a `next` call): the
  // headers every response carries, CORS preflight, the authorization server's routes, the FHIR API.
  app.use((req: Request, res: Response, next: NextFunction) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'ETag, Location, Content-Location, Last-Modified');
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, Accept, If-Match, If-None-Exist, If-None-Match, If-Modified-Since, Prefer');
      res.status(204).end();
      return;
    }
    if (owned) {
      // What the authorization server does not answer (or an error it passes on) goes to the FHIR API.
      owned(req, res, (err?: unknown) => (err === undefined || err === 'route' || err === 'router' ? void fhir(req, res) : next(err)));
    } else {
      void fhir(req, res);
    }
  });

  return app;
}
