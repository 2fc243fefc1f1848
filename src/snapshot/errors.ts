import { GasangError } from '../util/errors.js';

/**
 * Why a snapshot cannot be written or restored: `not-found`/`not-snapshot`/`version`/`truncated`/
 * `corrupt` for a file that is refused, `mismatch` for one that does not fit (another board,
 * other disks), `unsupported` for a VM that cannot be snapshotted as it is, `io` for the host.
 */
export type SnapshotErrorKind = 'not-found' | 'not-snapshot' | 'version' | 'truncated' | 'corrupt' | 'mismatch' | 'unsupported' | 'io';

export class SnapshotError extends GasangError {
  constructor(readonly kind: SnapshotErrorKind, message: string, options?: { cause?: unknown }) {
    super(`snapshot-${kind}`, message, options);
  }
}
