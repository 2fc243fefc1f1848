/**
 * A NIC as users declare it (`--nic user,hostfwd=…`, `--nic tap,ifname=tap0`, the VM spec's
 * `nics`) and the backend it opens. One parser for every interface, so the CLI and the daemon
 * refuse the same mistakes with the same words.
 */
import { GasangError, InputError } from '../util/errors.js';
import { splitOptions } from '../util/split-options.js';
import type { NetBackend } from '../devices/virtio/net/backend.js';
import { defaultMac, parseMac } from './mac.js';
import { TapBackend } from './tap/tap.js';
import type { UserNetConfig } from './user/config.js';
import { parseUserNetOptions } from './user/options.js';
import { UserNet } from './user/usernet.js';

export interface TapNic { kind: 'tap'; mac: Uint8Array; ifname?: string }
export interface UserNic { kind: 'user'; mac: Uint8Array; config: UserNetConfig }
export type NicConfig = TapNic | UserNic;

const bad = (message: string): InputError => new InputError('bad-nic', message);

/** Parses one --nic value; undefined for `none`. `index` is the NIC's position (its default MAC). */
export function parseNic(flag: string, value: string, index: number): NicConfig | undefined {
  const [kind, ...rest] = splitOptions(value);
  if (kind === 'none' && rest.length === 0) return undefined;
  if (kind === 'user') {
    const u = parseUserNetOptions(flag, value);
    return { kind: 'user', mac: u.mac ?? defaultMac(index), config: u.config };
  }
  if (kind !== 'tap') throw bad(`${flag} ${JSON.stringify(value)}: the NIC type is user, tap or none`);
  const nic: TapNic = { kind: 'tap', mac: defaultMac(index) };
  for (const item of rest) {
    const eq = item.indexOf('=');
    const key = eq > 0 ? item.slice(0, eq) : item;
    const v = eq > 0 ? item.slice(eq + 1) : '';
    if (key === 'mac') nic.mac = parseMac(`${flag} mac`, v);
    else if (key === 'ifname') {
      if (v === '' || Buffer.byteLength(v) > 15 || /[\s/:]/.test(v)) throw bad(`${flag}: ifname=${v}: a device name of 1 to 15 characters, no spaces, '/' or ':'`);
      nic.ifname = v;
    } else throw bad(`${flag}: unknown key ${JSON.stringify(key)} for a tap NIC (keys: ifname, mac)`);
  }
  return nic;
}

/** Opens the NIC's backend; errors the user can act on (a TAP refused, a forwarded port in use) are InputErrors naming the flag. */
export async function openNic(flag: string, nic: NicConfig, log: (line: string) => void): Promise<NetBackend> {
  try {
    if (nic.kind === 'user') return await UserNet.open(nic.config, log);
    return TapBackend.open({ ifname: nic.ifname, log });
  } catch (err) {
    if (!(err instanceof GasangError)) throw err;
    throw new InputError('bad-nic', `${flag}: ${err.message}`, { cause: err });
  }
}
