/**
 * What a user-mode network is made of (the guest's view, as QEMU's -nic user: a /24 with the
 * gateway at .2 standing for the host, the DNS relay at .3, leases from .15) and what it lets the
 * guest reach. `resolveConfig` checks a config once and turns addresses into numbers.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { GasangError } from '../../util/errors.js';
import { formatIp4, parseIp4 } from '../packet/ip.js';

export class UserNetError extends GasangError {}

export interface HostForward {
  proto: 'tcp' | 'udp';
  /** Host address to listen on ('0.0.0.0' for every interface, as QEMU's empty one). */
  hostAddr: string;
  hostPort: number;
  /** The guest's address; default: the DHCP address. */
  guestAddr?: string;
  guestPort: number;
}

/** One permitted destination, in the guest's view (10.0.2.2 is the host's loopback). */
export interface AllowRule {
  /** An IPv4 address or network ("10.0.2.2", "192.168.1.0/24"). */
  host: string;
  /** 0: any port. */
  port: number;
}

export interface UserNetConfig {
  net?: string;
  host?: string;
  dns?: string;
  dhcpStart?: string;
  /** DHCP options 12 and 15. */
  hostname?: string;
  domain?: string;
  hostfwd?: HostForward[];
  /** QEMU's restrict=on: the guest reaches nothing it did not get a forwarded connection from (DNS included), except `outbound` rules. */
  restrict?: boolean;
  /** Guest-initiated traffic: everything, nothing, or only these destinations. A list overrides restrict and hostLoopback. */
  outbound?: 'allow' | 'deny' | AllowRule[];
  /** Whether the gateway address reaches the host's 127.0.0.1 (default true); forwarded ports work either way. */
  hostLoopback?: boolean;
  /** Where DNS queries to the relay go; default: the first nameserver of /etc/resolv.conf. */
  resolver?: { address: string; port?: number };
  /** Several guests share the network (a switch's gateway): ARP is answered for the gateway and DNS addresses only, the guests answer for themselves. */
  shared?: boolean;
  /** Caps (defaults in DEFAULT_LIMITS). */
  limits?: Partial<Limits>;
}

export interface Limits {
  tcpFlows: number;
  /** Connections still opening (host connect pending or handshake with the guest unfinished). */
  tcpHalfOpen: number;
  udpFlows: number;
  /** Bytes from a host socket waiting for the guest's ACK before the socket is paused. */
  tcpSendBuffer: number;
  /** Bytes of guest data the host socket may hold unsent: our receive window. */
  tcpRecvBuffer: number;
  udpIdleMs: number;
  timeWaitMs: number;
  connectTimeoutMs: number;
  /** Frames (other than TCP, which resends from its buffer) held while the guest has no receive buffers. */
  rxQueueFrames: number;
}

export const DEFAULT_LIMITS: Limits = {
  tcpFlows: 1024, tcpHalfOpen: 128, udpFlows: 256, tcpSendBuffer: 512 * 1024, tcpRecvBuffer: 256 * 1024,
  udpIdleMs: 60_000, timeWaitMs: 1000, connectTimeoutMs: 20_000, rxQueueFrames: 64,
};

export interface Rule { addr: number; mask: number; port: number }

/** A checked config: addresses as numbers. */
export interface Resolved {
  net: number;
  mask: number;
  prefix: number;
  host: number;
  dns: number;
  guest: number;
  hostname: string | undefined;
  domain: string | undefined;
  forwards: (HostForward & { guest: number })[];
  /** undefined: no list; otherwise only these. */
  rules: Rule[] | undefined;
  denyAll: boolean;
  hostLoopback: boolean;
  resolver: { address: string; port: number } | undefined;
  shared: boolean;
  limits: Limits;
}

const bad = (message: string): UserNetError => new UserNetError('usernet-config', message);

function addr(what: string, s: string): number {
  const a = parseIp4(s);
  if (a === undefined) throw bad(`${what} ${JSON.stringify(s)} is not an IPv4 address`);
  return a;
}

/** "a.b.c.d/n" (n defaults to 24, as QEMU's net=) → address and prefix length. */
export function parseCidr(what: string, s: string, defaultPrefix = 24): { addr: number; prefix: number } {
  const [a, p, ...rest] = s.split('/');
  const prefix = p === undefined ? defaultPrefix : Number(p);
  if (rest.length || !Number.isInteger(prefix) || prefix < 0 || prefix > 32 || (p !== undefined && !/^\d+$/.test(p))) throw bad(`${what} ${JSON.stringify(s)}: the prefix length is 0 to 32`);
  return { addr: addr(what, a ?? ''), prefix };
}

const maskOf = (prefix: number): number => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

/** The first IPv4 or IPv6 nameserver of /etc/resolv.conf, if any. */
export function systemResolver(path = '/etc/resolv.conf'): string | undefined {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch { return undefined; }
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && isIP(m[1]!)) return m[1]!;
  }
  return undefined;
}

export function resolveConfig(c: UserNetConfig): Resolved {
  const { addr: netAddr, prefix } = parseCidr('net', c.net ?? '10.0.2.0/24');
  if (prefix > 29) throw bad(`net ${c.net}: a network of at least 8 addresses (prefix at most 29)`);
  const mask = maskOf(prefix);
  const net = (netAddr & mask) >>> 0;
  const inNet = (what: string, s: string | undefined, dflt: number): number => {
    const a = s === undefined ? (net + dflt) >>> 0 : addr(what, s);
    const bcast = (net | ~mask) >>> 0;
    if (((a & mask) >>> 0) !== net || a === net || a === bcast) throw bad(`${what} ${formatIp4(a)} is not a host address in ${formatIp4(net)}/${prefix}`);
    return a;
  };
  const host = inNet('host', c.host, 2);
  const dns = inNet('dns', c.dns, 3);
  const guest = inNet('dhcpstart', c.dhcpStart, 15);
  if (host === dns || guest === host || guest === dns) throw bad('host, dns and dhcpstart must be three different addresses');
  const forwards = (c.hostfwd ?? []).map(f => {
    if (!isIP(f.hostAddr)) throw bad(`hostfwd: host address ${JSON.stringify(f.hostAddr)} is not an IP address`);
    if (!Number.isInteger(f.hostPort) || f.hostPort < 0 || f.hostPort > 65535) throw bad(`hostfwd: host port ${f.hostPort} is not 0 (any free one) to 65535`);
    if (!Number.isInteger(f.guestPort) || f.guestPort < 1 || f.guestPort > 65535) throw bad(`hostfwd: guest port ${f.guestPort} is not 1 to 65535`);
    return { ...f, guest: inNet('hostfwd guest address', f.guestAddr, guest - net) };
  });
  let rules: Rule[] | undefined;
  if (Array.isArray(c.outbound)) {
    rules = c.outbound.map(r => {
      const { addr: a, prefix: p } = parseCidr('allow', r.host, 32);
      if (!Number.isInteger(r.port) || r.port < 0 || r.port > 65535) throw bad(`allow ${r.host}: port ${r.port} is not 0 to 65535`);
      const m = maskOf(p);
      return { addr: (a & m) >>> 0, mask: m, port: r.port };
    });
  }
  const resolverAddr = c.resolver?.address ?? systemResolver();
  if (resolverAddr !== undefined && !isIP(resolverAddr)) throw bad(`DNS resolver ${JSON.stringify(resolverAddr)} is not an IP address`);
  const limits = { ...DEFAULT_LIMITS, ...c.limits };
  return {
    net, mask, prefix, host, dns, guest, hostname: c.hostname, domain: c.domain, forwards, rules,
    denyAll: c.outbound === 'deny' || (c.restrict === true && rules === undefined),
    hostLoopback: c.hostLoopback ?? true,
    resolver: resolverAddr === undefined ? undefined : { address: resolverAddr, port: c.resolver?.port ?? 53 },
    shared: c.shared === true,
    limits,
  };
}

/** Whether the guest may start a flow to `dst`:`port` (guest-visible addresses). */
export function permits(r: Resolved, dst: number, port: number): boolean {
  if (r.rules) {
    for (const rule of r.rules) if (((dst & rule.mask) >>> 0) === rule.addr && (rule.port === 0 || rule.port === port)) return true;
    return false;
  }
  if (r.denyAll) return false;
  return dst !== r.host || r.hostLoopback;
}
