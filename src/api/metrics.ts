/**
 * Prometheus text exposition format (version 0.0.4) for GET /metrics: per-VM usage from
 * VmInfo.usage, host-wide resources, and the daemon's own request counts.
 */
import type { HostApi, VmInfo, VmState, VmUsage } from '../vm/types.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const STATES: readonly VmState[] = ['created', 'starting', 'running', 'paused', 'stopping', 'stopped', 'crashed'];

/** One family per VmUsage field: metric name, type and help, in the order they are printed. */
const VM_FAMILIES: readonly { field: keyof VmUsage; name: string; type: 'counter' | 'gauge'; help: string }[] = [
  { field: 'cpuSeconds', name: 'gasang_vm_cpu_seconds_total', type: 'counter', help: "Host CPU time used by the VM's thread since it started." },
  { field: 'instructions', name: 'gasang_vm_instructions_total', type: 'counter', help: 'Guest instructions retired, all harts.' },
  { field: 'mmioExits', name: 'gasang_vm_mmio_exits_total', type: 'counter', help: 'Guest accesses to device registers (exits to the host).' },
  { field: 'guestRamBytes', name: 'gasang_vm_guest_memory_bytes', type: 'gauge', help: 'Guest RAM.' },
  { field: 'hostOverheadBytes', name: 'gasang_vm_host_overhead_bytes', type: 'gauge', help: 'Host memory beyond guest RAM attributed to the VM.' },
  { field: 'diskReadBytes', name: 'gasang_vm_disk_read_bytes_total', type: 'counter', help: 'Bytes read by the guest through virtio-blk.' },
  { field: 'diskWriteBytes', name: 'gasang_vm_disk_written_bytes_total', type: 'counter', help: 'Bytes written by the guest through virtio-blk.' },
];

/** Switch port counters (Open vSwitch's sense: rx = from the VM into the switch). */
const PORT_FAMILIES: readonly [field: 'rxFrames' | 'rxBytes' | 'txFrames' | 'txBytes', name: string, help: string][] = [
  ['rxFrames', 'gasang_net_port_rx_frames_total', 'Frames a VM port sent into its network\'s switch.'],
  ['rxBytes', 'gasang_net_port_rx_bytes_total', 'Bytes a VM port sent into its network\'s switch.'],
  ['txFrames', 'gasang_net_port_tx_frames_total', 'Frames the switch delivered to a VM port.'],
  ['txBytes', 'gasang_net_port_tx_bytes_total', 'Bytes the switch delivered to a VM port.'],
];

/** Label values escape backslash, double quote and newline (the format's only escapes). */
const label = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

const num = (v: number): string => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));

/** Requests answered by the daemon, by method and status. */
export class RequestCounter {
  private readonly counts = new Map<string, number>();

  add(method: string, status: number): void {
    const key = `${method} ${status}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  entries(): [method: string, status: string, count: number][] {
    return [...this.counts].map(([k, n]) => {
      const [method, status] = k.split(' ') as [string, string];
      return [method, status, n];
    });
  }
}

export function renderMetrics(host: HostApi, requests: RequestCounter): string {
  const vms: VmInfo[] = host.list();
  const out: string[] = [];
  const family = (name: string, type: string, help: string): void => { out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`); };
  const vmLabels = (vm: VmInfo): string => `vm="${label(vm.spec.name)}",id="${label(vm.id)}"`;

  family('gasang_vm_state', 'gauge', 'The state of each VM: 1 for its current state, 0 for the others.');
  for (const vm of vms) for (const s of STATES) out.push(`gasang_vm_state{${vmLabels(vm)},state="${s}"} ${vm.state === s ? 1 : 0}`);
  family('gasang_vm_cpus', 'gauge', 'Guest harts.');
  for (const vm of vms) out.push(`gasang_vm_cpus{${vmLabels(vm)}} ${vm.spec.cpus}`);
  for (const f of VM_FAMILIES) {
    family(f.name, f.type, f.help);
    for (const vm of vms) out.push(`${f.name}{${vmLabels(vm)}} ${num(vm.usage[f.field])}`);
  }

  const ports = host.networkPorts();
  const portLabels = (p: (typeof ports)[number]): string => `network="${label(p.network)}",port="${label(p.port.id)}",vm="${label(p.port.vm)}",mac="${p.port.mac}"`;
  for (const [field, name, help] of PORT_FAMILIES) {
    family(name, 'counter', help);
    for (const p of ports) out.push(`${name}{${portLabels(p)}} ${num(p.port[field])}`);
  }
  family('gasang_net_port_dropped_frames_total', 'counter', 'Frames the switch dropped at a port, by reason (acl, spoof, rate, vlan, malformed, noroute, queue).');
  for (const p of ports) for (const [reason, n] of Object.entries(p.port.drops)) out.push(`gasang_net_port_dropped_frames_total{${portLabels(p)},reason="${reason}"} ${num(n)}`);

  const r = host.resources();
  family('gasang_host_memory_committed_bytes', 'gauge', 'Guest RAM committed to running VMs.');
  out.push(`gasang_host_memory_committed_bytes ${num(r.memoryCommittedBytes)}`);
  family('gasang_host_memory_limit_bytes', 'gauge', 'Most guest RAM the host commits (host RAM times the overcommit ratio).');
  out.push(`gasang_host_memory_limit_bytes ${num(r.memoryLimitBytes)}`);
  family('gasang_host_cores', 'gauge', 'Host cores the scheduler hands out.');
  out.push(`gasang_host_cores ${num(r.cores)}`);
  family('gasang_http_requests_total', 'counter', 'HTTP requests answered by the daemon.');
  for (const [method, status, n] of requests.entries()) out.push(`gasang_http_requests_total{method="${label(method)}",status="${status}"} ${n}`);
  return out.join('\n') + '\n';
}
