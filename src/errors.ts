/**
 * One error type for the whole server: a category plus an OperationOutcome.
 *
 * Every layer throws `FhirError`; only the HTTP edge (src/http/errors.ts) turns a category into a
 * status code, and batch/transaction processing does the same per entry. This module sits at the
 * bottom of the import graph so that the store, validation and the core can all use it.
 */
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

export type ErrorCategory =
  | 'invalid' // 400: the request cannot be understood (bad JSON, bad parameter, failed structure)
  | 'unauthorized' // 401
  | 'forbidden' // 403
  | 'not-found' // 404
  | 'method-not-allowed' // 405
  | 'not-acceptable' // 406
  | 'conflict' // 409
  | 'gone' // 410
  | 'precondition-failed' // 412
  | 'too-large' // 413
  | 'unsupported-media-type' // 415
  | 'unprocessable' // 422: well-formed but breaks a business or profile rule
  | 'too-many-requests' // 429
  | 'not-implemented' // 501
  | 'internal'; // 500: always a bug

export type IssueType = OperationOutcomeIssue['code'];

export class FhirError extends Error {
  readonly category: ErrorCategory;
  readonly outcome: OperationOutcome;
  /** Extra response headers (e.g. `WWW-Authenticate` on a 401). */
  headers: Record<string, string> = {};

  constructor(category: ErrorCategory, outcome: OperationOutcome | string, code: IssueType = defaultCode(category)) {
    const oo = typeof outcome === 'string' ? operationOutcome('error', code, outcome) : outcome;
    super(oo.issue?.[0]?.diagnostics ?? oo.issue?.[0]?.details?.text ?? category);
    this.name = 'FhirError';
    this.category = category;
    this.outcome = oo;
  }
}

/** Builds a one-issue OperationOutcome. `expression` names the element by FHIRPath. */
export function operationOutcome(
  severity: 'fatal' | 'error' | 'warning' | 'information',
  code: IssueType,
  text: string,
  expression?: string[],
): OperationOutcome {
  const issue: OperationOutcomeIssue = { severity, code, details: { text }, diagnostics: text };
  if (expression && expression.length > 0) {
    issue.expression = expression;
  }
  return { resourceType: 'OperationOutcome', issue: [issue] };
}

export function outcomeOf(issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

export function informational(text: string): OperationOutcome {
  return operationOutcome('information', 'informational', text);
}

function defaultCode(category: ErrorCategory): IssueType {
  switch (category) {
    case 'invalid':
      return 'invalid';
    case 'unauthorized':
      return 'login';
    case 'forbidden':
      return 'forbidden';
    case 'not-found':
      return 'not-found';
    case 'method-not-allowed':
    case 'not-implemented':
      return 'not-supported';
    case 'not-acceptable':
    case 'unsupported-media-type':
      return 'not-supported';
    case 'conflict':
    case 'precondition-failed':
      return 'conflict';
    case 'gone':
      return 'deleted';
    case 'too-large':
      return 'too-costly';
    case 'unprocessable':
      return 'processing';
    case 'too-many-requests':
      return 'throttled';
    case 'internal':
      return 'exception';
  }
}

export const badRequest = (text: string, expression?: string[]): FhirError =>
  new FhirError('invalid', operationOutcome('error', 'invalid', text, expression));
export const forbidden = (text: string): FhirError => new FhirError('forbidden', text);
export const unauthorized = (text: string): FhirError => new FhirError('unauthorized', text);
export const notFound = (text: string): FhirError => new FhirError('not-found', text);
export const gone = (text: string): FhirError => new FhirError('gone', text);
export const preconditionFailed = (text: string): FhirError => new FhirError('precondition-failed', text);
export const conflict = (text: string): FhirError => new FhirError('conflict', text);
export const unprocessable = (text: string, expression?: string[]): FhirError =>
  new FhirError('unprocessable', operationOutcome('error', 'processing', text, expression));

/** The one table from error category to HTTP status, used by the edge and by batch entries. */
export const STATUS_BY_CATEGORY: Record<ErrorCategory, number> = {
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  'method-not-allowed': 405,
  'not-acceptable': 406,
  conflict: 409,
  gone: 410,
  'precondition-failed': 412,
  'too-large': 413,
  'unsupported-media-type': 415,
  unprocessable: 422,
  'too-many-requests': 429,
  internal: 500,
  'not-implemented': 501,
};
