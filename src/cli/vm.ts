/**
 * `gasang vm ...`: VMs managed by gasangd, through its REST API (the Unix socket by default; TCP
 * with --url and a token). `create` takes the options of `gasang run` that a stored spec can
 * hold; `console` attaches this terminal to a VM's console until Ctrl-].
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { InputError } from '../util/errors.js';
import type { DriveSpec, NicSpec, ShareSpec, VmInfo, VmSpec, VolumeSpec } from '../vm/types.js';
import { parseNic } from '../net/nic.js';
import { userFieldsOf } from '../net/user/options.js';
import { formatMac } from '../net/mac.js';
import { splitOptions } from '../util/split-options.js';
import { ApiClient, ApiClientError, type Endpoint } from '../api/client.js';
import { defaultSocketPath } from '../api/paths.js';
import type { ConsoleEvent } from '../api/console.js';
import { parseRunArgs } from './args.js';
import { formatTable } from './table.js';

export const VM_USAGE = `Usage: gasang vm <command> [options]

VMs run by the gasangd daemon.

Commands:
  create --name NAME [options]   define a VM (--start also starts it)
  start NAME                     boot it
  stop NAME [--timeout SECONDS]  press its power button; force the stop after the timeout (default 30)
  kill NAME                      stop it at once
  pause NAME / resume NAME       hold and continue its harts
  snapshot NAME [--file PATH] [--stop]
                                 save the running VM (harts, RAM, devices; writable drives must be
                                 qcow2, as overlays are) to PATH (default: its own file in the
                                 daemon's state); --stop: then stop it
  restore NAME [--file PATH]     start the stopped VM from its snapshot instead of booting
  migrate NAME --to HOST:PORT [--token TOKEN] [--copy-storage]
                                 move the running VM to the gasangd listening on HOST:PORT (its
                                 API token: --token or GASANG_TARGET_TOKEN) by live migration;
                                 its disks must be reachable there at the same paths, or with
                                 --copy-storage its overlays go with it (only the bases shared)
  clone SRC NEW [--file PATH]    start NEW as a copy of SRC: a snapshot of SRC now (or PATH, or
                                 SRC's own snapshot if it is stopped), copies of its overlays,
                                 NEW's own MAC addresses; the guest agent renames the guest
  ls [--json]                    list VMs with their state and resource use
  inspect NAME                   everything about one VM (JSON)
  console NAME [--read-only]     attach this terminal to its console (Ctrl-] detaches)
  rm NAME [--force]              delete it (--force: kill it first if it runs)

Options of create (as in gasang run):
  --cpus N, --memory SIZE, --kernel PATH, --initrd PATH, --firmware PATH, --append STRING
  --drive file=PATH[,format=raw|qcow2][,readonly=on][,overlay=on][,iops=N][,bps=N]
                      overlay=on: run on a fresh qcow2 overlay of PATH (the base stays untouched)
  --volume mode=linear|stripe|mirror,files=A:B[:...][,readonly=on]
  --share host=DIR,tag=TAG[,readonly=on]
  --nic user[,hostfwd=…][,restrict=on][,…]
                      a network card on a user-mode network (keys as for gasang run --nic)
  --nic tap[,ifname=NAME][,mac=MAC]
                      a network card on a TAP device (default MAC: from the VM's name)
  --nic network=NAME[,vlan=N|,trunk=VLANS[,native=N]][,acl=RULE]...[,mac=MAC]
                      a port of the daemon's network NAME (gasang net create); trunk=10:20-30:
                      the guest sends those VLANs tagged (untagged frames: the native VLAN); each acl=
                      adds a rule, first match wins: ACTION[:dir=in|out|both][:proto=tcp|udp|icmp]
                      [:src=CIDR][:dst=CIDR][:sport=P[-Q]][:dport=P[-Q]], e.g. acl=deny:dir=in:proto=tcp:dport=80
  --cpu-shares N      CPU weight against other VMs (default 1024)
  --cpu-limit PCT     most host CPU, percent of one core
  --jit on|off

Connection (any command):
  --socket PATH       gasangd's Unix socket (default: $GASANG_SOCKET or ${defaultSocketPath()})
  --url http://HOST:PORT  gasangd over TCP; the token comes from --token-file FILE or $GASANG_TOKEN
`;

export interface VmIo {
  out(text: string): void;
  err(text: string): void;
  /** The terminal for `console` (process.stdin in the CLI). */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(raw: boolean): unknown };
  stdout: { write(b: Uint8Array | string): unknown };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

const bad = (message: string): InputError => new InputError('bad-option', message);

/** Ctrl-]: leaves the console (as telnet and virsh console do). */
export const DETACH_KEY = 0x1d;

/** Removes the connection options from argv (they may appear anywhere) and builds the endpoint. */
export function takeEndpoint(argv: string[], env: NodeJS.ProcessEnv): { endpoint: Endpoint; rest: string[] } {
  const rest: string[] = [];
  let socketPath: string | undefined;
  let url: string | undefined;
  let tokenFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^(--socket|--url|--token-file)(?:=(.*))?$/.exec(a);
    if (!m) { rest.push(a); continue; }
    const value = m[2] ?? argv[++i];
    if (value === undefined || value === '') throw bad(`${m[1]} needs a value`);
    if (m[1] === '--socket') socketPath = value;
    else if (m[1] === '--url') url = value;
    else tokenFile = value;
  }
  if (!url) {
    if (tokenFile) throw bad('--token-file is for --url (the Unix socket needs no token)');
    return { endpoint: { socketPath: socketPath ?? defaultSocketPath(env) }, rest };
  }
  if (socketPath) throw bad('Give --socket or --url, not both');
  let u: URL;
  try { u = new URL(url); } catch { throw bad(`--url ${JSON.stringify(url)}: not a URL (e.g. http://127.0.0.1:7070)`); }
  if (u.protocol !== 'http:' || u.pathname !== '/') throw bad(`--url ${url}: expected http://HOST:PORT`);
  let token = env.GASANG_TOKEN;
  if (tokenFile) {
    try { token = readFileSync(tokenFile, 'utf8').trim(); } catch (err) { throw bad(`--token-file ${tokenFile}: ${(err as Error).message}`); }
  }
  if (!token) throw bad('--url needs a token: --token-file FILE or $GASANG_TOKEN');
  return { endpoint: { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80), token }, rest };
}

/** Splits key=value lists as gasang run does (a doubled comma is a literal comma). */
function items(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    if (value[i] !== ',') { cur += value[i]; continue; }
    if (value[i + 1] === ',') { cur += ',,'; i++; continue; }
    out.push(cur);
    cur = '';
  }
  out.push(cur);
  return out;
}

function onOff(flag: string, key: string, v: string): boolean {
  if (/^(on|yes|true)$/i.test(v)) return true;
  if (/^(off|no|false)$/i.test(v)) return false;
  throw bad(`${flag}: ${key}=${v}: expected on or off`);
}

/**
 * --drive as in gasang run (parsed by the same code), plus overlay=on. Options a stored spec
 * cannot hold are refused rather than dropped.
 */
function driveSpec(value: string, cwd: string): DriveSpec {
  let overlay: boolean | undefined;
  const kept = items(value).filter(item => {
    if (!item.startsWith('overlay=')) return true;
    overlay = onOff('--drive', 'overlay', item.slice('overlay='.length));
    return false;
  });
  const [d] = parseRunArgs(['--no-rng', '--drive', kept.join(',')], { kernel: '', firmware: '' }).drives;
  if (d?.kind !== 'file') throw bad('--drive: not a drive');
  if (d.serial !== undefined) throw bad('--drive: serial= is not supported by gasang vm');
  if (d.throttle?.iopsBurst !== undefined || d.throttle?.bpsBurst !== undefined) throw bad('--drive: iops_burst= and bps_burst= are not supported by gasang vm');
  const spec: DriveSpec = { file: resolve(cwd, d.file) };
  if (d.format) spec.format = d.format;
  if (d.readOnly) spec.readonly = true;
  if (overlay) spec.overlay = true;
  if (d.throttle?.iops !== undefined) spec.iops = d.throttle.iops;
  if (d.throttle?.bps !== undefined) spec.bps = d.throttle.bps;
  return spec;
}

function volumeSpec(value: string, cwd: string): VolumeSpec {
  const [v] = parseRunArgs(['--no-rng', '--volume', value], { kernel: '', firmware: '' }).drives;
  if (v?.kind !== 'volume') throw bad('--volume: not a volume');
  if (v.stripeBytes !== undefined || v.throttle || v.serial !== undefined) throw bad('--volume: stripe=, serial= and throttling are not supported by gasang vm');
  return { mode: v.mode, files: v.files.map(f => resolve(cwd, f)), ...(v.readOnly && { readonly: true }) };
}

function shareSpec(value: string, cwd: string): ShareSpec {
  const [s] = parseRunArgs(['--no-rng', '--share', value], { kernel: '', firmware: '' }).shares;
  return { host: resolve(cwd, s!.host), tag: s!.tag, ...(s!.readOnly && { readonly: true }) };
}

function nicSpec(value: string, index: number): NicSpec | undefined {
  const nic = parseNic('--nic', value, index);
  if (!nic) return undefined;
  const macGiven = splitOptions(value).some(item => item.startsWith('mac='));
  const mac = macGiven ? { mac: formatMac(nic.mac) } : {};
  if (nic.kind === 'user') return { type: 'user', ...userFieldsOf('--nic', value), ...mac };
  if (nic.kind === 'network') return { type: 'network', network: nic.network, ...(nic.vlan !== undefined && { vlan: nic.vlan }), ...(nic.trunk && { trunk: nic.trunk }), ...(nic.acl && { acl: nic.acl }), ...mac };
  return { type: 'tap', ...(nic.ifname !== undefined && { ifname: nic.ifname }), ...mac };
}

function positiveNumber(flag: string, v: string, integer: boolean): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw bad(`${flag} ${JSON.stringify(v)}: not ${integer ? 'an integer' : 'a number'}`);
  return n;
}

/** The spec of `gasang vm create`; paths are made absolute against `cwd` (the daemon's differs). */
export function parseCreateArgs(argv: readonly string[], cwd: string): { spec: VmSpec; start: boolean } {
  let name: string | undefined;
  let start = false;
  const spec: Omit<VmSpec, 'name'> = {};
  const drives: DriveSpec[] = [];
  const volumes: VolumeSpec[] = [];
  const shares: ShareSpec[] = [];
  const nics: NicSpec[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--start') { start = true; continue; }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (!flag.startsWith('-')) throw bad(`Unexpected argument ${JSON.stringify(arg)} (the name is given with --name)`);
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw bad(`${flag} needs a value`);
      value = argv[++i]!;
    }
    switch (flag) {
      case '--name': name = value; break;
      case '--cpus': spec.cpus = parseRunArgs(['--cpus', value], { kernel: '', firmware: '' }).cpus; break;
      case '-m':
      case '--memory': spec.memoryMiB = parseRunArgs(['--memory', value], { kernel: '', firmware: '' }).memoryMiB; break;
      case '--kernel': spec.kernel = resolve(cwd, value); break;
      case '--initrd': spec.initrd = resolve(cwd, value); break;
      case '--firmware': spec.firmware = resolve(cwd, value); break;
      case '--append': spec.append = value; break;
      case '--drive': drives.push(driveSpec(value, cwd)); break;
      case '--volume': volumes.push(volumeSpec(value, cwd)); break;
      case '--share': shares.push(shareSpec(value, cwd)); break;
      case '--nic': {
        const nic = nicSpec(value, nics.length);
        if (nic) nics.push(nic);
        break;
      }
      case '--cpu-shares': spec.cpuShares = positiveNumber(flag, value, true); break;
      case '--cpu-limit': spec.cpuLimit = positiveNumber(flag, value.replace(/%$/, ''), false); break;
      case '--jit':
        if (value !== 'on' && value !== 'off') throw bad(`--jit ${JSON.stringify(value)}: must be on or off`);
        spec.jit = value === 'on';
        break;
      default: throw bad(`Unknown option ${flag} for gasang vm create (see gasang vm --help)`);
    }
  }
  if (!name) throw bad('gasang vm create needs --name NAME');
  if (drives.length) spec.drives = drives;
  if (volumes.length) spec.volumes = volumes;
  if (shares.length) spec.shares = shares;
  if (nics.length) spec.nics = nics;
  return { spec: { name, ...spec }, start };
}

/** The one VM name a command takes, and its flags. */
function nameAnd(cmd: string, argv: readonly string[], flags: readonly string[] = []): { name: string; flags: Map<string, string | true> } {
  let name: string | undefined;
  const seen = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) {
      if (name !== undefined) throw bad(`gasang vm ${cmd} takes one VM name (got ${JSON.stringify(name)} and ${JSON.stringify(a)})`);
      name = a;
      continue;
    }
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const spec = flags.find(f => f.split(' ')[0] === flag);
    if (!spec) throw bad(`Unknown option ${flag} for gasang vm ${cmd}`);
    if (spec.includes(' ')) {
      const v = inline ?? argv[++i];
      if (v === undefined) throw bad(`${flag} needs a value`);
      seen.set(flag, v);
    } else seen.set(flag, true);
  }
  if (name === undefined) throw bad(`gasang vm ${cmd} needs a VM name`);
  return { name, flags: seen };
}

const MiB = 1024 * 1024;

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m}m${Math.floor(seconds % 60)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

/** `gasang vm ls`: one line per VM, columns aligned. */
export function formatList(vms: readonly VmInfo[]): string {
  const rows = [['NAME', 'ID', 'STATE', 'CPUS', 'MEMORY', 'CPU TIME', 'HOST OVERHEAD']];
  for (const v of vms) {
    rows.push([
      v.spec.name, v.id, v.state + (v.exit && (v.state === 'stopped' || v.state === 'crashed') ? ` (${v.exit.reason})` : ''),
      String(v.spec.cpus), `${v.spec.memoryMiB} MiB`, duration(v.usage.cpuSeconds),
      v.usage.hostOverheadBytes ? `${(v.usage.hostOverheadBytes / MiB).toFixed(1)} MiB` : '-',
    ]);
  }
  return formatTable(rows);
}

/** Runs `gasang vm ARGS`; resolves with the exit status. Refusals throw (one line for the user). */
export async function runVm(argv: string[], io: VmIo): Promise<number> {
  const { endpoint, rest } = takeEndpoint(argv, io.env);
  const [cmd, ...args] = rest;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') { io.out(VM_USAGE); return cmd ? 0 : 2; }
  const client = new ApiClient(endpoint);
  switch (cmd) {
    case 'create': {
      const { spec, start } = parseCreateArgs(args, io.cwd);
      const info = await client.create(spec);
      if (start) await client.action(info.spec.name, 'start');
      io.out(`${info.spec.name}\n`);
      return 0;
    }
    case 'start':
    case 'kill':
    case 'pause':
    case 'resume': {
      const { name } = nameAnd(cmd, args);
      await client.action(name, cmd);
      io.out(`${name}\n`);
      return 0;
    }
    case 'snapshot': {
      const { name, flags } = nameAnd(cmd, args, ['--file PATH', '--stop']);
      const file = flags.get('--file');
      const shown = showProgress(client, name, io, v => (v.snapshot?.pagesToWrite ? `${name}: ${v.snapshot.pagesWritten} of ${v.snapshot.pagesToWrite} RAM pages written\n` : ''));
      const { snapshot: s } = await client.snapshot(name, { ...(typeof file === 'string' ? { file: resolve(io.cwd, file) } : {}), ...(flags.has('--stop') ? { stop: true } : {}) })
        .finally(shown);
      io.out(`${s.file}: ${(s.bytes / MiB).toFixed(1)} MiB, ${s.storedPages} of ${s.ramPages} RAM pages stored, the guest held ${s.pauseMs.toFixed(0)} ms\n`);
      return 0;
    }
    case 'restore': {
      const { name, flags } = nameAnd(cmd, args, ['--file PATH']);
      const file = flags.get('--file');
      await client.restore(name, typeof file === 'string' ? { file: resolve(io.cwd, file) } : {});
      io.out(`${name}\n`);
      return 0;
    }
    case 'migrate': {
      const { name, flags } = nameAnd(cmd, args, ['--to HOST:PORT', '--token TOKEN', '--copy-storage']);
      const to = flags.get('--to');
      const m = typeof to === 'string' ? /^(.+):(\d+)$/.exec(to) : null;
      if (!m) throw bad('gasang vm migrate needs --to HOST:PORT (the target gasangd\'s TCP address)');
      const token = flags.get('--token') ?? io.env.GASANG_TARGET_TOKEN;
      const shown = showProgress(client, name, io, v => {
        const p = v.migration;
        return p ? `${name}: ${p.phase === 'held' ? 'held for the last' : `round ${p.round},`} ${(p.bytesSent / MiB).toFixed(1)} MiB sent, ${p.remainingPages} pages to go\n` : '';
      });
      const r = await client.migrate(name, { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]), ...(typeof token === 'string' ? { token } : {}) }, { copyStorage: flags.has('--copy-storage') })
        .finally(shown);
      const x = r.migration;
      io.out(`${name}: moved to ${to} in ${x.totalMs.toFixed(0)} ms (${x.rounds} rounds, ${(x.bytesSent / MiB).toFixed(1)} MiB), the guest held ${x.downtimeMs.toFixed(0)} ms${x.flowsMoved ? `; ${x.flowsMoved} open TCP flow(s) relayed from here until they close` : ''}\n`);
      return 0;
    }
    case 'clone': {
      const names = args.filter((a, i) => !a.startsWith('-') && args[i - 1] !== '--file');
      if (names.length !== 2) throw bad('gasang vm clone takes the source VM and the new VM\'s name: gasang vm clone SRC NEW');
      const { flags } = nameAnd(cmd, args.filter((_, i) => i !== args.indexOf(names[1]!)), ['--file PATH']);
      const file = flags.get('--file');
      const c = await client.clone(names[0]!, { name: names[1]!, ...(typeof file === 'string' ? { file: resolve(io.cwd, file) } : {}) });
      io.out(`${c.vm.spec.name}: running from ${c.file} after ${c.startMs.toFixed(0)} ms; ${c.identity ? `named by its guest agent after ${c.identityMs!.toFixed(0)} ms` : 'no guest agent answered: the guest still has its source\'s name'}\n`);
      return 0;
    }
    case 'stop': {
      const { name, flags } = nameAnd(cmd, args, ['--timeout SECONDS']);
      const t = flags.get('--timeout');
      const body = typeof t === 'string' ? { timeoutMs: Math.round(positiveNumber('--timeout', t, false) * 1000) } : undefined;
      const info = await client.action(name, 'stop', body);
      io.out(`${name}${info.exit ? ` (${info.exit.reason})` : ''}\n`);
      return 0;
    }
    case 'ls':
    case 'list': {
      const json = args.includes('--json');
      const unknown = args.find(a => a !== '--json');
      if (unknown) throw bad(`Unexpected argument ${JSON.stringify(unknown)} for gasang vm ls`);
      const vms = await client.list();
      io.out(json ? `${JSON.stringify(vms, null, 2)}\n` : formatList(vms));
      return 0;
    }
    case 'inspect': {
      const { name } = nameAnd(cmd, args);
      io.out(`${JSON.stringify(await client.inspect(name), null, 2)}\n`);
      return 0;
    }
    case 'rm': {
      const { name, flags } = nameAnd(cmd, args, ['--force', '-f']);
      if (flags.has('--force') || flags.has('-f')) {
        const info = await client.inspect(name);
        if (info.state === 'running' || info.state === 'paused' || info.state === 'starting' || info.state === 'stopping') await client.action(name, 'kill');
      }
      await client.remove(name);
      io.out(`${name}\n`);
      return 0;
    }
    case 'console': {
      const { name, flags } = nameAnd(cmd, args, ['--read-only']);
      return attachConsole(client, name, !flags.has('--read-only'), io);
    }
    default:
      throw bad(`Unknown command 'gasang vm ${cmd}' (try: gasang vm --help)`);
  }
}

/**
 * The VM's console on this terminal: raw mode when stdin is a TTY, typing sent as it comes,
 * Ctrl-] to detach. Ends when the user detaches, stdin closes, the VM stops or the daemon goes.
 */
/** Shows `line` of the VM's info on stderr twice a second while a long operation runs (when it changes); returns the stop. */
function showProgress(client: ApiClient, name: string, io: VmIo, line: (v: VmInfo) => string): () => void {
  let last = '';
  const timer = setInterval(() => {
    client.inspect(name).then(v => {
      const text = line(v);
      if (text && text !== last) io.err(text);
      last = text;
    }, () => {});
  }, 500);
  return () => clearInterval(timer);
}

async function attachConsole(client: ApiClient, name: string, write: boolean, io: VmIo): Promise<number> {
  let ws;
  try {
    ws = await client.console(name, { write });
  } catch (err) {
    if (err instanceof ApiClientError && err.status === 409) throw new ApiClientError(409, err.apiCode, `${err.message} (gasang vm console --read-only ${name} watches)`);
    throw err;
  }
  const nl = io.stdin.isTTY ? '\r\n' : '\n';
  const tty = io.stdin.isTTY === true && typeof io.stdin.setRawMode === 'function';
  io.err(`gasang: attached to ${name}${write ? '' : ' (read-only)'}; Ctrl-] detaches${nl}`);
  return new Promise<number>(done => {
    let finished = false;
    const finish = (code: number, line?: string): void => {
      if (finished) return;
      finished = true;
      io.stdin.off('data', onInput);
      io.stdin.off('end', onEnd);
      io.stdin.pause();
      if (tty) io.stdin.setRawMode!(false);
      process.off('exit', restore);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
      if (line) io.err(`${nl}gasang: ${line}${nl}`);
      ws.close();
      done(code);
    };
    const restore = (): void => { if (tty) io.stdin.setRawMode!(false); };
    const onSignal = (signal: string): void => finish(1, `${signal}: detached from ${name}`);
    const onInput = (chunk: Buffer | string): void => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const at = bytes.indexOf(DETACH_KEY);
      const send = at < 0 ? bytes : bytes.subarray(0, at);
      if (write && send.length) ws.send(send);
      if (at >= 0) finish(0, `detached from ${name}`);
    };
    const onEnd = (): void => finish(0);
    ws.on('message', (data, binary) => {
      if (binary) { io.stdout.write(data); return; }
      const ev = JSON.parse(data.toString('utf8')) as ConsoleEvent;
      if (ev.type === 'stopped') finish(0, `${name} stopped${ev.exit ? ` (${(ev.exit as { reason: string }).reason})` : ''}`);
      else if (ev.type === 'error') io.err(`${nl}gasang: ${ev.message}${nl}`);
      else if (ev.type === 'dropped') io.err(`${nl}gasang: ${ev.bytes} bytes of output dropped (this terminal fell behind)${nl}`);
    });
    ws.on('close', (code, reason) => finish(code === 1000 || code === 1001 ? 0 : 1, `console closed${reason ? `: ${reason}` : ''}`));
    if (tty) { io.stdin.setRawMode!(true); process.on('exit', restore); }
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
    io.stdin.on('data', onInput);
    io.stdin.on('end', onEnd);
    io.stdin.resume();
  });
}
