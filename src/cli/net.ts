/**
 * `gasang net ...`: gasangd's named networks, as `virsh net-*`: a virtual switch each, with a
 * gateway that gives addresses by DHCP and, with NAT, reaches the outside. VMs join one with
 * `gasang vm create --nic network=NAME`.
 */
import { InputError } from '../util/errors.js';
import { ApiClient } from '../api/client.js';
import type { NetworkInfo, NetworkSpec } from '../vm/networks.js';
import { takeEndpoint, type VmIo } from './vm.js';
import { formatTable } from './table.js';

export const NET_USAGE = `Usage: gasang net <command> [options]

Networks of the gasangd daemon: VMs on one network reach each other (unless it is isolated)
and the gateway, which gives them addresses by DHCP and, with NAT, reaches the outside.

Commands:
  create NAME [--subnet CIDR] [--nat on|off] [--isolated]
                      define a network (default 10.0.2.0/24: gateway .2, DNS .3, leases from .15;
                      NAT on; --isolated: VMs talk only to the gateway, never to each other)
  ls [--json]         list networks with their ports
  inspect NAME        one network, its ports (MAC, IP, counters) and the gateway's counters (JSON)
  rm NAME             remove a network no VM uses

Options of every command: --socket PATH, --url URL, --token-file FILE (as for gasang vm).
`;

const bad = (message: string): InputError => new InputError('bad-option', message);

export function parseNetCreate(argv: readonly string[]): NetworkSpec {
  let name: string | undefined;
  const spec: Omit<NetworkSpec, 'name'> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) {
      if (name !== undefined) throw bad(`gasang net create takes one network name (got ${JSON.stringify(name)} and ${JSON.stringify(a)})`);
      name = a;
      continue;
    }
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    if (flag === '--isolated') { spec.isolated = true; continue; }
    const v = inline ?? argv[++i];
    if (flag !== '--subnet' && flag !== '--nat') throw bad(`Unknown option ${flag} for gasang net create`);
    if (v === undefined) throw bad(`${flag} needs a value`);
    if (flag === '--subnet') spec.subnet = v;
    else if (v === 'on' || v === 'off') spec.nat = v === 'on';
    else throw bad(`--nat ${v}: on or off`);
  }
  if (name === undefined) throw bad('gasang net create needs a network name');
  return { name, ...spec };
}

export function formatNetworks(nets: readonly NetworkInfo[]): string {
  const rows = [['NAME', 'SUBNET', 'GATEWAY', 'NAT', 'ISOLATED', 'PORTS']];
  for (const n of nets) {
    rows.push([n.spec.name, n.spec.subnet, n.gateway, n.spec.nat ? 'on' : 'off', n.spec.isolated ? 'yes' : 'no',
      n.ports.map(p => `${p.vm} ${p.mac}${p.ip ? ` ${p.ip}` : ''}`).join(', ') || '-']);
  }
  return formatTable(rows);
}

function oneName(cmd: string, args: readonly string[]): string {
  if (args.length !== 1 || args[0]!.startsWith('-')) throw bad(`gasang net ${cmd} takes one network name`);
  return args[0]!;
}

export async function runNet(argv: string[], io: VmIo): Promise<number> {
  const { endpoint, rest } = takeEndpoint(argv, io.env);
  const [cmd, ...args] = rest;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') { io.out(NET_USAGE); return cmd ? 0 : 2; }
  const client = new ApiClient(endpoint);
  switch (cmd) {
    case 'create': {
      const info = await client.createNetwork(parseNetCreate(args));
      io.out(`${info.spec.name}\n`);
      return 0;
    }
    case 'ls':
    case 'list': {
      const unknown = args.find(a => a !== '--json');
      if (unknown) throw bad(`Unexpected argument ${JSON.stringify(unknown)} for gasang net ls`);
      const nets = await client.networks();
      io.out(args.includes('--json') ? `${JSON.stringify(nets, null, 2)}\n` : formatNetworks(nets));
      return 0;
    }
    case 'inspect':
      io.out(`${JSON.stringify(await client.network(oneName(cmd, args)), null, 2)}\n`);
      return 0;
    case 'rm': {
      const name = oneName(cmd, args);
      await client.removeNetwork(name);
      io.out(`${name}\n`);
      return 0;
    }
    default:
      throw bad(`Unknown command 'gasang net ${cmd}' (try: gasang net --help)`);
  }
}
