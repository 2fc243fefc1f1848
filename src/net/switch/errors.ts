import { GasangError } from '../../util/errors.js';

/** Why the switch refused a configuration or a port handle. */
export type SwitchErrorCode = 'bad-switch' | 'bad-port' | 'bad-acl' | 'bad-handle' | 'port-exists' | 'no-port';

/** A switch or port configuration the switch refuses; the message names the option. */
export class SwitchError extends GasangError {
  constructor(readonly kind: SwitchErrorCode, message: string) {
    super(kind, message);
  }
}
