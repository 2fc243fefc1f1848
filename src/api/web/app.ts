/**
 * The daemon's web page (runs in the browser): the VM list, polled from the REST API each second,
 * with state, CPU use (from the change in cpuSeconds) and memory; start/stop buttons; and the
 * console of one VM in xterm.js over the console WebSocket.
 */
import { Terminal } from '@xterm/xterm';
import type { VmInfo } from '../../vm/types.js';

const POLL_MS = 1000;

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const tbody = document.querySelector('#vms tbody') as HTMLTableSectionElement;
const message = $<HTMLParagraphElement>('message');

/** Last cpuSeconds sample per VM id, for CPU use between two polls. */
const lastCpu = new Map<string, { cpuSeconds: number; at: number }>();
let selected: string | undefined;

async function api(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return undefined;
  const json: unknown = await res.json();
  if (!res.ok) {
    const err = (json as { error?: { message?: string } }).error;
    throw new Error(err?.message ?? `HTTP ${res.status}`);
  }
  return json;
}

const mib = (bytes: number): string => `${(bytes / 1048576).toFixed(0)} MiB`;

function cpuUse(vm: VmInfo, now: number): string {
  const prev = lastCpu.get(vm.id);
  lastCpu.set(vm.id, { cpuSeconds: vm.usage.cpuSeconds, at: now });
  if (!prev || vm.state !== 'running' || now <= prev.at) return vm.state === 'running' ? '…' : '–';
  const pct = ((vm.usage.cpuSeconds - prev.cpuSeconds) / ((now - prev.at) / 1000)) * 100;
  return `${Math.max(0, pct).toFixed(0)} %`;
}

function button(label: string, cls: string, onClick: () => void, enabled: boolean): HTMLButtonElement {
  const b = document.createElement('button');
  b.textContent = label;
  b.className = cls;
  b.disabled = !enabled;
  b.addEventListener('click', onClick);
  return b;
}

function cell(row: HTMLTableRowElement, text: string, cls = ''): void {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
}

const kib = (bytes: number): string => (bytes < 1048576 ? `${(bytes / 1024).toFixed(0)} KiB` : mib(bytes));

/** "eth0 user 52:54:00:… 10.0.2.15 ↑12 KiB ↓3 MiB": one line per card. */
function nicText(n: NonNullable<VmInfo['nics']>[number]): string {
  const where = n.type === 'network' ? `network ${n.network}` : n.type;
  const traffic = n.fromGuestBytes === undefined ? '' : ` ↑${kib(n.fromGuestBytes)} ↓${kib(n.toGuestBytes ?? 0)}${n.dropped ? ` (${n.dropped} dropped)` : ''}`;
  return `eth${n.index} ${where} ${n.mac}${n.ip ? ` ${n.ip}` : ''}${traffic}`;
}

function render(vms: VmInfo[]): void {
  const now = performance.now();
  tbody.replaceChildren();
  $('empty').hidden = vms.length > 0;
  for (const vm of vms) {
    const row = tbody.insertRow();
    row.dataset.vm = vm.spec.name;
    if (vm.spec.name === selected) row.className = 'selected';
    cell(row, vm.spec.name, 'name');
    cell(row, vm.state, `state state-${vm.state}`);
    cell(row, String(vm.spec.cpus), 'num');
    cell(row, cpuUse(vm, now), 'num cpu');
    cell(row, `${mib(vm.usage.guestRamBytes || vm.spec.memoryMiB * 1048576)} + ${mib(vm.usage.hostOverheadBytes)}`, 'num memory');
    cell(row, (vm.nics ?? []).map(nicText).join('\n') || '–', 'network');
    const live = vm.state === 'running' || vm.state === 'paused' || vm.state === 'starting';
    const actions = row.insertCell();
    actions.append(
      button('Start', 'start', () => void act(vm.spec.name, 'start'), !live && vm.state !== 'stopping'),
      button('Stop', 'stop', () => void act(vm.spec.name, 'stop'), live),
      button('Console', 'console', () => openConsole(vm.spec.name), true),
    );
  }
}

async function refresh(): Promise<void> {
  try {
    const { vms } = await api('GET', '/v1/vms') as { vms: VmInfo[] };
    render(vms);
    const host = await api('GET', '/v1/host') as { memoryCommittedBytes: number; memoryLimitBytes: number; cores: number };
    $('host').textContent = `${host.cores} cores · ${mib(host.memoryCommittedBytes)} of ${mib(host.memoryLimitBytes)} guest RAM committed`;
  } catch (err) {
    message.textContent = `Cannot reach gasangd: ${(err as Error).message}`;
  }
}

async function act(name: string, action: 'start' | 'stop'): Promise<void> {
  message.textContent = '';
  try {
    if (action === 'start') {
      await api('POST', `/v1/vms/${encodeURIComponent(name)}/start`);
      openConsole(name); // a new run: reattach (the console replays what was printed so far)
    } else {
      await api('POST', `/v1/vms/${encodeURIComponent(name)}/stop`);
    }
  } catch (err) {
    message.textContent = `${action} ${name}: ${(err as Error).message}`;
  }
  await refresh();
}

let term: Terminal | undefined;
let socket: WebSocket | undefined;

function openConsole(name: string, write = true): void {
  selected = name;
  socket?.close();
  $('console-panel').hidden = false;
  $('console-name').textContent = name;
  $('console-mode').textContent = 'connecting…';
  if (!term) {
    term = new Terminal({ convertEol: false, cursorBlink: true, rows: 24, cols: 100, scrollback: 5000 });
    term.open($('terminal'));
    term.onData(data => { if (socket?.readyState === WebSocket.OPEN) socket.send(data); });
  }
  term.reset();
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/v1/vms/${encodeURIComponent(name)}/console${write ? '?write=1' : ''}`);
  ws.binaryType = 'arraybuffer';
  socket = ws;
  let opened = false;
  ws.onopen = () => { opened = true; };
  ws.onmessage = e => {
    if (typeof e.data !== 'string') { term!.write(new Uint8Array(e.data as ArrayBuffer)); return; }
    const ev = JSON.parse(e.data) as { type: string; writer?: boolean; message?: string; state?: string; bytes?: number };
    if (ev.type === 'hello') $('console-mode').textContent = ev.writer ? '(typing goes to the guest)' : '(read-only: another client holds the keyboard)';
    else if (ev.type === 'stopped') $('console-mode').textContent = `(${ev.state})`;
    else if (ev.type === 'error') message.textContent = ev.message ?? '';
    else if (ev.type === 'dropped') term!.write(`\r\n[${ev.bytes} bytes of output dropped]\r\n`);
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    // Refused before opening: most likely another client holds the write side; watch instead.
    if (!opened && write) { openConsole(name, false); return; }
    $('console-mode').textContent = '(disconnected)';
  };
  term.focus();
}

void refresh();
setInterval(() => void refresh(), POLL_MS);
