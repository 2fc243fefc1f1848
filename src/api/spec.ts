/**
 * The REST API's request bodies. A VM spec is checked by the host's own checkSpec (src/vm/spec.ts),
 * with absolute paths required: the daemon's working directory means nothing to its clients.
 * docs/openapi.json describes the same rules; a test checks that both agree.
 */
import { isAbsolute } from 'node:path';
import { checkSpec, int, object, onlyKnown, type CheckedSpec } from '../vm/spec.js';
import { HostError } from '../vm/types.js';

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

/** The optional snapshot file of a body: an absolute path (the daemon's directory means nothing to clients). */
function snapshotFile(o: Record<string, unknown>): { file?: string } {
  if (o.file === undefined) return {};
  if (typeof o.file !== 'string' || !isAbsolute(o.file)) throw new HostError('invalid', 'file: must be an absolute path');
  return { file: o.file };
}

/** Body of POST /v1/vms/{vm}/snapshot: where to write it (default: the VM's own file) and whether to stop the VM after. */
export function parseSnapshotBody(body: unknown): { file?: string; stop?: boolean } {
  if (body === undefined) return {};
  const o = object('body', body);
  onlyKnown('', o, ['file', 'stop']);
  if (o.stop !== undefined && typeof o.stop !== 'boolean') throw new HostError('invalid', 'stop: must be true or false');
  return { ...snapshotFile(o), ...(o.stop !== undefined ? { stop: o.stop as boolean } : {}) };
}

/** Body of POST /v1/vms/{vm}/restore: the snapshot to continue (default: the VM's own file). */
export function parseRestoreBody(body: unknown): { file?: string } {
  if (body === undefined) return {};
  const o = object('body', body);
  onlyKnown('', o, ['file']);
  return snapshotFile(o);
}

/** Body of POST /v1/vms/{vm}/clone: the new VM's name, and optionally the snapshot to clone from. */
export function parseCloneBody(body: unknown): { name: string; file?: string } {
  const o = object('body', body);
  onlyKnown('', o, ['name', 'file']);
  if (typeof o.name !== 'string' || o.name === '') throw new HostError('invalid', 'name: required, the new VM\'s name');
  return { name: o.name, ...snapshotFile(o) };
}

/** Body of POST /v1/vms/{vm}/migrate: the target gasangd's TCP address and its API token, and whether the overlays go with the VM. */
export function parseMigrateBody(body: unknown): { host: string; port: number; token?: string; copyStorage: boolean } {
  const o = object('body', body);
  onlyKnown('', o, ['to', 'copyStorage']);
  if (o.copyStorage !== undefined && typeof o.copyStorage !== 'boolean') throw new HostError('invalid', 'copyStorage: must be true or false');
  const to = object('to', o.to);
  onlyKnown('to.', to, ['host', 'port', 'token']);
  if (typeof to.host !== 'string' || to.host === '') throw new HostError('invalid', 'to.host: required, the target gasangd\'s address');
  const port = int('to.port', to.port, 1, 65535);
  if (to.token !== undefined && typeof to.token !== 'string') throw new HostError('invalid', 'to.token: must be a string');
  return { host: to.host, port, ...(to.token !== undefined ? { token: to.token as string } : {}), copyStorage: o.copyStorage === true };
}

/** Body of POST /v1/migrations: the spec of the VM a source migrates in. */
export function parseIncomingBody(body: unknown): { spec: CheckedSpec } {
  const o = object('body', body);
  onlyKnown('', o, ['spec']);
  return { spec: parseVmSpec(o.spec) };
}
