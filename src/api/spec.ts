/**
 * The REST API's request bodies. A VM spec is checked by the host's own checkSpec (src/vm/spec.ts),
 * with absolute paths required: the daemon's working directory means nothing to its clients.
 * docs/openapi.json describes the same rules; a test checks that both agree.
 */
import { checkSpec, int, object, onlyKnown, type CheckedSpec } from '../vm/spec.js';

/** A VM spec from parsed JSON, or HostError('invalid') (400) naming the first problem. */
export function parseVmSpec(body: unknown): CheckedSpec {
  return checkSpec(body, { paths: 'absolute' });
}

/** Body of POST /v1/vms/{vm}/stop: an optional timeout before the forced stop. */
export function parseStopBody(body: unknown): { timeoutMs?: number } {
  if (body === undefined) return {};
  const o = object('body', body);
  onlyKnown('', o, ['timeoutMs']);
  return o.timeoutMs === undefined ? {} : { timeoutMs: int('timeoutMs', o.timeoutMs, 0, 3_600_000, ' ms') };
}

/** Actions without parameters accept no body or an empty object. */
export function parseEmptyBody(body: unknown): void {
  if (body === undefined) return;
  onlyKnown('', object('body', body), []);
}
