/**
 * Per-port access control lists: ordered allow/deny rules on the IPv4 5-tuple, evaluated first
 * match wins, with a hit counter per rule. Rules are compiled once from their JSON form (what the
 * daemon's API takes) into numbers, so matching a frame allocates nothing.
 *
 * Directions are the VM's, as in libvirt's nwfilter: `out` is what the VM sends, `in` what it
 * receives, `both` either.
 */
import { IpProto, parseIp4 } from '../packet/ip.js';
import type { FrameInfo } from './frame.js';
import { SwitchError } from './errors.js';

export type AclAction = 'allow' | 'deny';
export type AclDirection = 'in' | 'out' | 'both';

/** One rule as users write it. Ports are a number or "lo-hi"; addresses "a.b.c.d" or "a.b.c.d/len". */
export interface AclRule {
  action: AclAction;
  direction?: AclDirection;
  proto?: 'tcp' | 'udp' | 'icmp' | 'any';
  src?: string;
  dst?: string;
  srcPort?: number | string;
  dstPort?: number | string;
}

export const enum Dir { IN = 1, OUT = 2 }
/** A rule's verdict, or none matched. */
export const enum Verdict { NONE = 0, ALLOW = 1, DENY = 2 }

interface Compiled {
  allow: boolean;
  dirs: number;
  /** IP protocol number, -1 for any. */
  proto: number;
  /** The rule names an address, protocol or port, so it matches IPv4 frames only. */
  ipOnly: boolean;
  srcNet: number; srcMask: number;
  dstNet: number; dstMask: number;
  sportLo: number; sportHi: number;
  dportLo: number; dportHi: number;
}

const bad = (where: string, message: string): SwitchError => new SwitchError('bad-acl', `${where}: ${message}`);
const PROTOS: Record<string, number> = { any: -1, tcp: IpProto.TCP, udp: IpProto.UDP, icmp: IpProto.ICMP };

export class Acl {
  private readonly rules: Compiled[];
  /** Frames each rule decided, in rule order. */
  readonly hits: number[];

  constructor(rules: readonly AclRule[], where: string) {
    if (!Array.isArray(rules)) throw bad(where, 'the ACL is a list of rules');
    this.rules = rules.map((r, i) => compile(r, `${where}[${i}]`));
    this.hits = this.rules.map(() => 0);
  }

  get length(): number { return this.rules.length; }

  /** The first matching rule's verdict for a frame going `dir` (counted), or NONE. */
  check(info: FrameInfo, dir: Dir): Verdict {
    const rules = this.rules;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if ((r.dirs & dir) === 0) continue;
      if (r.ipOnly) {
        if (!info.ipv4) continue;
        if (r.proto >= 0 && info.proto !== r.proto) continue;
        if (((info.src & r.srcMask) >>> 0) !== r.srcNet || ((info.dst & r.dstMask) >>> 0) !== r.dstNet) continue;
        if (r.sportLo >= 0 && !(info.sport >= r.sportLo && info.sport <= r.sportHi)) continue;
        if (r.dportLo >= 0 && !(info.dport >= r.dportLo && info.dport <= r.dportHi)) continue;
      }
      this.hits[i]!++;
      return r.allow ? Verdict.ALLOW : Verdict.DENY;
    }
    return Verdict.NONE;
  }
}

function compile(r: AclRule, where: string): Compiled {
  if (typeof r !== 'object' || r === null) throw bad(where, 'a rule is an object');
  const known = new Set(['action', 'direction', 'proto', 'src', 'dst', 'srcPort', 'dstPort']);
  for (const k of Object.keys(r)) if (!known.has(k)) throw bad(where, `unknown key ${JSON.stringify(k)}`);
  if (r.action !== 'allow' && r.action !== 'deny') throw bad(where, 'action is allow or deny');
  const direction = r.direction ?? 'both';
  const dirs = direction === 'in' ? Dir.IN : direction === 'out' ? Dir.OUT : direction === 'both' ? Dir.IN | Dir.OUT : 0;
  if (dirs === 0) throw bad(where, 'direction is in, out or both');
  const protoName = r.proto ?? 'any';
  const proto = PROTOS[protoName];
  if (proto === undefined || !Object.hasOwn(PROTOS, protoName)) throw bad(where, 'proto is tcp, udp, icmp or any');
  const [srcNet, srcMask] = cidr(r.src, `${where}.src`);
  const [dstNet, dstMask] = cidr(r.dst, `${where}.dst`);
  const [sportLo, sportHi] = portRange(r.srcPort, `${where}.srcPort`);
  const [dportLo, dportHi] = portRange(r.dstPort, `${where}.dstPort`);
  if ((sportLo >= 0 || dportLo >= 0) && proto !== IpProto.TCP && proto !== IpProto.UDP) throw bad(where, 'ports need proto tcp or udp');
  const ipOnly = proto >= 0 || r.src !== undefined || r.dst !== undefined;
  return { allow: r.action === 'allow', dirs, proto, ipOnly, srcNet, srcMask, dstNet, dstMask, sportLo, sportHi, dportLo, dportHi };
}

/** [network, mask] of "a.b.c.d[/len]"; [0, 0] (anything) when absent. */
export function cidr(s: string | undefined, where: string): [number, number] {
  if (s === undefined) return [0, 0];
  const slash = typeof s === 'string' ? s.indexOf('/') : -1;
  const addr = parseIp4(typeof s === 'string' ? (slash < 0 ? s : s.slice(0, slash)) : '') ?? -1;
  const bits = slash < 0 ? 32 : Number(s.slice(slash + 1));
  if (addr < 0 || !Number.isInteger(bits) || bits < 0 || bits > 32 || (slash >= 0 && !/^\d{1,2}$/.test(s.slice(slash + 1)))) {
    throw bad(where, `${JSON.stringify(s)} is not an IPv4 address or CIDR (like 10.0.0.0/24)`);
  }
  const mask = bits === 0 ? 0 : (0xffff_ffff << (32 - bits)) >>> 0;
  return [(addr & mask) >>> 0, mask];
}

/** [lo, hi] of a port or "lo-hi"; [-1, -1] (any) when absent. */
function portRange(p: number | string | undefined, where: string): [number, number] {
  if (p === undefined) return [-1, -1];
  const m = typeof p === 'number' ? [String(p), String(p), String(p)] : /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(String(p));
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? Number(m[2] ?? m[1]) : NaN;
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && hi <= 65535 && lo <= hi)) {
    throw bad(where, `${JSON.stringify(p)} is not a port or range (like 80 or 8000-8080)`);
  }
  return [lo, hi];
}

/** Keys of a rule's text form and the AclRule field each sets. */
const TEXT_KEYS: Record<string, 'direction' | 'proto' | 'src' | 'dst' | 'srcPort' | 'dstPort'> = {
  dir: 'direction', proto: 'proto', src: 'src', dst: 'dst', sport: 'srcPort', dport: 'dstPort',
};

/**
 * A rule from its command-line form, `ACTION[:KEY=VALUE]...` with keys dir, proto, src, dst,
 * sport and dport (`deny:dir=in:proto=tcp:dport=80`), checked as the API checks rules.
 */
export function parseAclText(text: string, where: string): AclRule {
  const [action, ...items] = text.split(':');
  const rule: AclRule = { action: action as AclAction };
  for (const item of items) {
    const eq = item.indexOf('=');
    const field = eq > 0 ? TEXT_KEYS[item.slice(0, eq)] : undefined;
    if (!field || !Object.hasOwn(TEXT_KEYS, item.slice(0, eq))) throw bad(where, `${JSON.stringify(item)}: keys are ${Object.keys(TEXT_KEYS).join(', ')} (as in deny:dir=in:proto=tcp:dport=80)`);
    (rule as unknown as Record<string, string>)[field] = item.slice(eq + 1);
  }
  compile(rule, where);
  return rule;
}
