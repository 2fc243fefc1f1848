/**
 * HTTP errors of the REST API. Every refusal has a status and a JSON body
 * `{"error": {"code": ..., "message": ...}}` whose code is stable (for programs) and whose message
 * names the problem (for people).
 */
import { GasangError, InputError } from '../util/errors.js';
import { HostError, type HostErrorKind } from '../vm/types.js';

export type ApiErrorCode =
  | HostErrorKind
  | 'unauthorized'
  | 'forbidden'
  | 'not-found'
  | 'method-not-allowed'
  | 'payload-too-large'
  | 'unsupported-media-type'
  | 'upgrade-required'
  | 'internal';

export class ApiError extends GasangError {
  constructor(
    readonly status: number,
    readonly apiCode: ApiErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(`api-${apiCode}`, message);
  }
}

/** HostError kinds → HTTP status. Refused overcommit is 507 (the host lacks the resources). */
const HOST_STATUS: Record<HostErrorKind, number> = { invalid: 400, 'not-found': 404, conflict: 409, resources: 507 };

export interface ErrorBody { error: { code: string; message: string } }

/** The status and body for anything a handler threw; `internal` is true for unexpected errors. */
export function errorResponse(err: unknown): { status: number; body: ErrorBody; headers: Record<string, string>; internal: boolean } {
  if (err instanceof ApiError) return { status: err.status, body: body(err.apiCode, err.message), headers: err.headers, internal: false };
  if (err instanceof HostError) return { status: HOST_STATUS[err.kind] ?? 500, body: body(err.kind, err.message), headers: {}, internal: false };
  if (err instanceof InputError) return { status: 400, body: body('invalid', err.message), headers: {}, internal: false };
  // Other gasang errors are failures of the host (a device, the store): their message is still the best explanation.
  const message = err instanceof GasangError ? err.message : 'Internal error (see the daemon log)';
  return { status: 500, body: body('internal', message), headers: {}, internal: true };
}

const body = (code: string, message: string): ErrorBody => ({ error: { code, message } });

export const invalid = (message: string): ApiError => new ApiError(400, 'invalid', message);
