/**
 * The QEMU-style option string of a user-mode NIC:
 *   user[,net=10.0.2.0/24][,host=10.0.2.2][,dns=10.0.2.3][,dhcpstart=10.0.2.15][,hostname=NAME]
 *       [,domain=NAME][,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...
 *       [,restrict=on|off][,allow=HOST[/PREFIX][:PORT]]...[,hostloopback=on|off]
 *       [,resolver=ADDR[:PORT]][,mac=52:54:00:12:34:56]
 * Mistakes are InputErrors of one line that name the key.
 */
import { isIP } from 'node:net';
import { InputError } from '../../util/errors.js';
import { splitOptions } from '../../util/split-options.js';
import { parseMac } from '../mac.js';
import { resolveConfig, type AllowRule, type HostForward, type UserNetConfig } from './config.js';

export interface UserNicOptions {
  config: UserNetConfig;
  /** mac= if given; otherwise the NIC's default. */
  mac?: Uint8Array;
}

const KEYS = 'net, host, dns, dhcpstart, hostname, domain, hostfwd, restrict, allow, hostloopback, resolver, mac';

/** Parses `value` ("user,…"; the leading "user" may be left out). `where` names it in messages ("--nic"). */
export function parseUserNetOptions(where: string, value: string): UserNicOptions {
  const items = splitOptions(value);
  if (items[0] === 'user') items.shift();
  const bad = (message: string): InputError => new InputError('bad-nic', `${where}: ${message}`);
  const config: UserNetConfig = {};
  const hostfwd: HostForward[] = [];
  const allow: AllowRule[] = [];
  let mac: Uint8Array | undefined;
  const onOff = (key: string, v: string): boolean => {
    if (v === 'on' || v === 'yes' || v === 'true') return true;
    if (v === 'off' || v === 'no' || v === 'false') return false;
    throw bad(`${key}=${v}: on or off`);
  };
  for (const item of items) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    const key = eq > 0 ? item.slice(0, eq) : item;
    const v = eq > 0 ? item.slice(eq + 1) : '';
    switch (key) {
      case 'net': config.net = v; break;
      case 'host': config.host = v; break;
      case 'dns': config.dns = v; break;
      case 'dhcpstart': config.dhcpStart = v; break;
      case 'hostname': config.hostname = name(bad, key, v); break;
      case 'domain': config.domain = name(bad, key, v); break;
      case 'hostfwd': hostfwd.push(parseHostfwd(bad, v)); break;
      case 'restrict': config.restrict = onOff(key, v); break;
      case 'hostloopback': config.hostLoopback = onOff(key, v); break;
      case 'allow': allow.push(parseAllow(bad, v)); break;
      case 'resolver': config.resolver = parseResolver(bad, v); break;
      case 'mac':
        try { mac = parseMac(`${where} mac`, v); } catch (err) { throw bad((err as Error).message.replace(/^.*?: /, `mac: `)); }
        break;
      default: throw bad(`unknown key ${JSON.stringify(key)} for a user NIC (keys: ${KEYS})`);
    }
  }
  if (hostfwd.length) config.hostfwd = hostfwd;
  if (allow.length) config.outbound = allow;
  try {
    resolveConfig(config);
  } catch (err) {
    throw bad((err as Error).message);
  }
  return mac ? { config, mac } : { config };
}

type Bad = (message: string) => InputError;

function name(bad: Bad, key: string, v: string): string {
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(v)) throw bad(`${key}=${v}: letters, digits, '.' and '-', at most 253`);
  return v;
}

function port(bad: Bad, what: string, s: string, min: number): number {
  const n = /^\d{1,5}$/.test(s) ? Number(s) : NaN;
  if (!(n >= min && n <= 65535)) throw bad(`${what} ${JSON.stringify(s)}: a port number from ${min} to 65535`);
  return n;
}

/** QEMU's hostfwd=[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport. */
function parseHostfwd(bad: Bad, v: string): HostForward {
  const m = /^(?:(tcp|udp):)?([^:-]*):(\d*)-([^:]*):(\d*)$/.exec(v);
  if (!m) throw bad(`hostfwd=${v}: expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT (like tcp:127.0.0.1:8080-:80)`);
  const hostAddr = m[2] || '0.0.0.0';
  if (isIP(hostAddr) !== 4) throw bad(`hostfwd=${v}: host address ${JSON.stringify(hostAddr)} is not an IPv4 address`);
  const f: HostForward = { proto: (m[1] ?? 'tcp') as 'tcp' | 'udp', hostAddr, hostPort: port(bad, `hostfwd=${v}: host port`, m[3]!, 1), guestPort: port(bad, `hostfwd=${v}: guest port`, m[5]!, 1) };
  if (m[4]) f.guestAddr = m[4];
  return f;
}

function parseAllow(bad: Bad, v: string): AllowRule {
  const m = /^([0-9.]+(?:\/\d+)?)(?::(\d+|\*))?$/.exec(v);
  if (!m) throw bad(`allow=${v}: expected HOST[/PREFIX][:PORT] (like 192.168.1.10:443)`);
  return { host: m[1]!, port: m[2] === undefined || m[2] === '*' ? 0 : port(bad, `allow=${v}: port`, m[2], 1) };
}

function parseResolver(bad: Bad, v: string): { address: string; port?: number } {
  if (isIP(v)) return { address: v };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d+)$/.exec(v);
  const address = m?.[1] ?? m?.[2];
  if (!m || !address || !isIP(address)) throw bad(`resolver=${v}: expected ADDR, ADDR:PORT or [IPv6]:PORT`);
  return { address, port: port(bad, `resolver=${v}: port`, m[3]!, 1) };
}

/** A user NIC in the VM spec: the option keys as JSON fields, lists for the repeatable ones. */
export interface UserNicFields {
  net?: string; host?: string; dns?: string; dhcpstart?: string; hostname?: string; domain?: string;
  hostfwd?: string[]; restrict?: boolean; allow?: string[]; hostloopback?: boolean; resolver?: string;
}
const STRING_FIELDS = ['net', 'host', 'dns', 'dhcpstart', 'hostname', 'domain', 'resolver'] as const;
const LIST_FIELDS = ['hostfwd', 'allow'] as const;
const FLAG_FIELDS = ['restrict', 'hostloopback'] as const;
export const USER_NIC_FIELDS: readonly string[] = [...STRING_FIELDS, ...LIST_FIELDS, ...FLAG_FIELDS];

const escape = (v: string): string => v.replaceAll(',', ',,');

/** The option string of spec fields (parse it with parseUserNetOptions, which checks everything). */
export function userOptionString(f: UserNicFields): string {
  const items = ['user'];
  for (const k of STRING_FIELDS) if (f[k] !== undefined) items.push(`${k}=${escape(f[k])}`);
  for (const k of LIST_FIELDS) for (const v of f[k] ?? []) items.push(`${k}=${escape(v)}`);
  for (const k of FLAG_FIELDS) if (f[k] !== undefined) items.push(`${k}=${f[k] ? 'on' : 'off'}`);
  return items.join(',');
}

/** The spec fields of a --nic user value (checked first, so mistakes read as for gasang run); mac= is left to the caller. */
export function userFieldsOf(where: string, value: string): UserNicFields {
  parseUserNetOptions(where, value);
  const f: UserNicFields = {};
  const items = splitOptions(value);
  if (items[0] === 'user') items.shift();
  for (const item of items) {
    const eq = item.indexOf('=');
    const key = item.slice(0, eq), v = item.slice(eq + 1);
    if ((STRING_FIELDS as readonly string[]).includes(key)) f[key as (typeof STRING_FIELDS)[number]] = v;
    else if ((LIST_FIELDS as readonly string[]).includes(key)) (f[key as (typeof LIST_FIELDS)[number]] ??= []).push(v);
    else if ((FLAG_FIELDS as readonly string[]).includes(key)) f[key as (typeof FLAG_FIELDS)[number]] = v === 'on' || v === 'yes' || v === 'true';
  }
  return f;
}
