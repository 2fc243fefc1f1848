/**
 * A NIC as users declare it (`--nic user,hostfwd=…`, `--nic tap,ifname=tap0`, the VM spec's
 * `nics`) and the backend it opens. One parser for every interface, so the CLI and the daemon
 * refuse the same mistakes with the same words.
 */
import { GasangError, InputError } from '../util/errors.js';
import { splitOptions } from '../util/split-options.js';
import type { NetBackend } from '../devices/virtio/net/backend.js';
import { defaultMac, parseMac } from './mac.js';
import { parseAclText, SwitchPortBackend, vlanList, type AclRule, type PortHandle } from './switch/index.js';
import { TapBackend } from './tap/tap.js';
import type { UserNetConfig } from './user/config.js';
import { parseUserNetOptions } from './user/options.js';
import { UserNet } from './user/usernet.js';

export interface TapNic { kind: 'tap'; mac: Uint8Array; ifname?: string }
export interface UserNic { kind: 'user'; mac: Uint8Array; config: UserNetConfig }
/** A port of one of gasangd's networks; the daemon adds the port and fills in its handle when the VM starts. */
export interface NetworkNic {
  kind: 'network'; mac: Uint8Array; network: string; vlan?: number; trunk?: { allowed: string | number[]; native?: number };
  acl?: AclRule[]; handle?: PortHandle;
}
export type NicConfig = TapNic | UserNic | NetworkNic;

const bad = (message: string): InputError => new InputError('bad-nic', message);

/** Parses one --nic value; undefined for `none`. `index` is the NIC's position (its default MAC). */
export function parseNic(flag: string, value: string, index: number): NicConfig | undefined {
  const [kind, ...rest] = splitOptions(value);
  if (kind === 'none' && rest.length === 0) return undefined;
  if (kind === 'user') {
    const u = parseUserNetOptions(flag, value);
    return { kind: 'user', mac: u.mac ?? defaultMac(index), config: u.config };
  }
  if (kind?.startsWith('network=')) return parseNetworkNic(flag, kind.slice(8), rest, index);
  if (kind !== 'tap') throw bad(`${flag} ${JSON.stringify(value)}: the NIC type is user, tap, network=NAME or none`);
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

function parseNetworkNic(flag: string, network: string, rest: string[], index: number): NetworkNic {
  if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(network)) throw bad(`${flag}: network=${network}: a network name (lowercase letters, digits and dashes)`);
  const nic: NetworkNic = { kind: 'network', mac: defaultMac(index), network };
  for (const item of rest) {
    const eq = item.indexOf('=');
    const key = eq > 0 ? item.slice(0, eq) : item;
    const v = eq > 0 ? item.slice(eq + 1) : '';
    if (key === 'mac') nic.mac = parseMac(`${flag} mac`, v);
    else if (key === 'vlan') {
      if (!/^\d{1,4}$/.test(v) || Number(v) < 1 || Number(v) > 4094) throw bad(`${flag}: vlan=${v}: a VLAN number from 1 to 4094`);
      nic.vlan = Number(v);
    } else if (key === 'trunk') {
      // VLAN lists use ':' on the command line, where ',' separates keys: trunk=10:20-30.
      const allowed = v.replaceAll(':', ',');
      try {
        vlanList(flag, allowed);
      } catch {
        throw bad(`${flag}: trunk=${v}: VLAN ids from 1 to 4094 and ranges, separated by ':' (like trunk=10:20-30)`);
      }
      nic.trunk = { ...nic.trunk, allowed };
    } else if (key === 'native') {
      if (!/^\d{1,4}$/.test(v) || Number(v) < 1 || Number(v) > 4094) throw bad(`${flag}: native=${v}: a VLAN number from 1 to 4094`);
      nic.trunk = { allowed: nic.trunk?.allowed ?? '', native: Number(v) };
    } else if (key === 'acl') {
      try {
        (nic.acl ??= []).push(parseAclText(v, `${flag} acl=${v}`));
      } catch (err) {
        throw bad((err as Error).message);
      }
    } else throw bad(`${flag}: unknown key ${JSON.stringify(key)} for a network NIC (keys: vlan, trunk, native, acl, mac)`);
  }
  if (nic.trunk && !nic.trunk.allowed) throw bad(`${flag}: native= goes with trunk=VLANS`);
  if (nic.trunk && nic.vlan !== undefined) throw bad(`${flag}: vlan= (an access port) and trunk= exclude each other`);
  return nic;
}

/** Opens the NIC's backend; errors the user can act on (a TAP refused, a forwarded port in use) are InputErrors naming the flag. */
export async function openNic(flag: string, nic: NicConfig, log: (line: string) => void): Promise<NetBackend> {
  try {
    if (nic.kind === 'user') return await UserNet.open(nic.config, log);
    if (nic.kind === 'network') {
      if (!nic.handle) throw bad(`${flag}: network=${nic.network} is a network of gasangd: give it to a VM with gasang vm create --nic network=${nic.network}`);
      return new SwitchPortBackend(nic.handle);
    }
    return TapBackend.open({ ifname: nic.ifname, log });
  } catch (err) {
    if (!(err instanceof GasangError)) throw err;
    throw new InputError('bad-nic', `${flag}: ${err.message}`, { cause: err });
  }
}
