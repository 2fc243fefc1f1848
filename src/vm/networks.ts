/**
 * The host's named networks (`gasang net create NAME`), as libvirt's: each is a virtual switch
 * (src/net/switch) whose gateway port is a user-mode network (src/net/user) that gives the VMs
 * their addresses by DHCP and, with NAT on, reaches the outside through host sockets; without NAT
 * the gateway answers DHCP, ARP and ping and forwards nothing. An isolated network keeps its VMs
 * from reaching each other (only the gateway). VMs join with a NIC {type: 'network', network}.
 *
 * Specs are kept in stateDir/networks.json (written to a temporary file, then renamed); a switch
 * lives as long as the host. Ports are added when a VM starts and removed when its run ends.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatIp4 } from '../net/packet/ip.js';
import { VirtualSwitch, type AclRule, type PortHandle, type PortStats } from '../net/switch/index.js';
import { resolveConfig, UserNetError } from '../net/user/config.js';
import { virtualMac } from '../net/user/link.js';
import { UserNet } from '../net/user/usernet.js';
import { onlyKnown, object } from './spec.js';
import { HostError, type NicTrunk } from './types.js';

export interface NetworkSpec {
  name: string;
  /** IPv4 network in CIDR, laid out as QEMU's user network: gateway .2, DNS .3, leases from .15. Default 10.0.2.0/24. */
  subnet?: string;
  /** Whether the VMs reach the outside (and the host's loopback through the gateway). Default true. */
  nat?: boolean;
  /** VM-to-VM traffic denied (each VM talks only to the gateway). Default false. */
  isolated?: boolean;
}

export interface NetworkInfo {
  spec: Required<NetworkSpec>;
  gateway: string;
  dns: string;
  /** The VMs' ports (not the gateway's), with their learned addresses and counters. */
  ports: PortStats[];
  /** The gateway's counters (DHCP, NAT flows, drops by reason). */
  gatewayStats: Record<string, number>;
}

export const NETWORK_NAME = /^[a-z0-9][a-z0-9-]{0,30}$/;
const FIELDS = ['name', 'subnet', 'nat', 'isolated'];
const GATEWAY_PORT = 'gateway';
const invalid = (m: string): HostError => new HostError('invalid', m);

/** Checks a network spec (from JSON); fills in the defaults. */
export function checkNetworkSpec(input: unknown): Required<NetworkSpec> {
  const o = object('network', input);
  onlyKnown('', o, FIELDS);
  if (typeof o.name !== 'string' || !NETWORK_NAME.test(o.name)) throw invalid(`name: ${JSON.stringify(o.name)} must be 1 to 31 lowercase letters, digits and dashes, not starting with a dash`);
  const subnet = o.subnet ?? '10.0.2.0/24';
  if (typeof subnet !== 'string') throw invalid('subnet: must be a string like 10.0.2.0/24');
  try {
    resolveConfig({ net: subnet, resolver: { address: '127.0.0.1' } });
  } catch (err) {
    if (err instanceof UserNetError) throw invalid(`subnet: ${err.message.replace(/^net /, '')}`);
    throw err;
  }
  for (const k of ['nat', 'isolated'] as const) if (o[k] !== undefined && typeof o[k] !== 'boolean') throw invalid(`${k}: must be true or false`);
  return { name: o.name, subnet, nat: (o.nat as boolean | undefined) ?? true, isolated: (o.isolated as boolean | undefined) ?? false };
}

class Network {
  readonly vswitch: VirtualSwitch;
  readonly ready: Promise<UserNet>;
  readonly gateway: number;
  readonly dns: number;

  constructor(readonly spec: Required<NetworkSpec>, log: (line: string) => void) {
    const cfg = resolveConfig({ net: spec.subnet, resolver: { address: '127.0.0.1' } });
    this.gateway = cfg.host;
    this.dns = cfg.dns;
    this.vswitch = new VirtualSwitch({ name: spec.name, isolated: spec.isolated });
    this.ready = UserNet.open({ net: spec.subnet, shared: true, ...(spec.nat ? {} : { outbound: 'deny' as const, hostLoopback: false }) }, log).then(uplink => {
      this.vswitch.addLocalPort({ id: GATEWAY_PORT, vm: '', mac: virtualMac(cfg.host), uplink: true, trusted: true }, uplink);
      return uplink;
    });
  }

  async info(): Promise<NetworkInfo> {
    const uplink = await this.ready;
    return {
      spec: this.spec, gateway: formatIp4(this.gateway), dns: formatIp4(this.dns),
      ports: this.vswitch.stats().ports.filter(p => p.id !== GATEWAY_PORT),
      gatewayStats: uplink.stats(),
    };
  }

  close(): void {
    this.vswitch.close();
    void this.ready.then(u => u.close(), () => {});
  }
}

export class Networks {
  private readonly nets = new Map<string, Network>();
  private readonly file: string;

  constructor(stateDir: string, private readonly log: (network: string, line: string) => void) {
    this.file = join(stateDir, 'networks.json');
    let saved: unknown[] = [];
    try {
      saved = JSON.parse(readFileSync(this.file, 'utf8')) as unknown[];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new HostError('invalid', `${this.file}: ${(err as Error).message}`);
    }
    for (const s of saved) {
      const spec = checkNetworkSpec(s);
      this.nets.set(spec.name, this.open(spec));
    }
  }

  private open(spec: Required<NetworkSpec>): Network {
    return new Network(spec, line => this.log(spec.name, line));
  }

  private save(): void {
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify([...this.nets.values()].map(n => n.spec), null, 2));
    renameSync(tmp, this.file);
  }

  async create(input: unknown): Promise<NetworkInfo> {
    const spec = checkNetworkSpec(input);
    if (this.nets.has(spec.name)) throw new HostError('conflict', `A network named ${spec.name} already exists`);
    const net = this.open(spec);
    try {
      await net.ready;
    } catch (err) {
      net.close();
      throw new HostError('invalid', `Cannot create network ${spec.name}: ${(err as Error).message}`, { cause: err });
    }
    this.nets.set(spec.name, net);
    this.save();
    return net.info();
  }

  has(name: string): boolean { return this.nets.has(name); }

  private get(name: string): Network {
    const n = this.nets.get(name);
    if (!n) throw new HostError('not-found', `No network named ${JSON.stringify(name)}`);
    return n;
  }

  info(name: string): Promise<NetworkInfo> { return this.get(name).info(); }

  list(): Promise<NetworkInfo[]> { return Promise.all([...this.nets.values()].map(n => n.info())); }

  /** Removes a network no VM uses (`usedBy`: the VMs whose specs name it). */
  remove(name: string, usedBy: string[]): void {
    const n = this.get(name);
    if (usedBy.length) throw new HostError('conflict', `Cannot remove network ${name}: VM${usedBy.length > 1 ? 's' : ''} ${usedBy.join(', ')} use${usedBy.length > 1 ? '' : 's'} it`);
    n.close();
    this.nets.delete(name);
    this.save();
  }

  /** A port for NIC `index` of a starting VM; hand the result to its thread. */
  async attach(network: string, vm: string, index: number, nic: { mac: Uint8Array; vlan?: number; trunk?: NicTrunk; acl?: AclRule[] }): Promise<{ id: string; handle: PortHandle }> {
    const n = this.get(network);
    await n.ready;
    const id = `${vm}/${index}`;
    return { id, handle: n.vswitch.addPort({ id, vm, mac: nic.mac, ...(nic.vlan !== undefined && { vlan: nic.vlan }), ...(nic.trunk && { trunk: nic.trunk }), ...(nic.acl && { acl: nic.acl }) }) };
  }

  detach(network: string, id: string): void {
    const n = this.nets.get(network);
    if (n?.vswitch.stats().ports.some(p => p.id === id)) n.vswitch.removePort(id);
  }

  /** Every VM port of every network, for /metrics. */
  ports(): { network: string; port: PortStats }[] {
    const out: { network: string; port: PortStats }[] = [];
    for (const n of this.nets.values()) for (const port of n.vswitch.stats().ports) if (port.id !== GATEWAY_PORT) out.push({ network: n.spec.name, port });
    return out;
  }

  close(): void {
    for (const n of this.nets.values()) n.close();
    this.nets.clear();
  }
}
