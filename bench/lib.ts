/** Helpers for the benchmarks: timing a process to a console marker, statistics, host facts, BENCHMARKS.md sections. */
import type { ConsoleClient, VmHandle } from '../src/vm/types.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, homedir, loadavg } from 'node:os';
import { join } from 'node:path';
import { ShellCommand } from '../test/integration/shell-command.js';

export interface Stats { median: number; min: number; max: number }

export function stats(xs: readonly number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return { median: s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2, min: s[0], max: s[s.length - 1] };
}

/** Watches console text for a line that is exactly `marker` (chunks may split it anywhere). */
export class MarkerWatch {
  private buf = '\n';
  /** The last few KiB of console text, for error messages. */
  tail = '';
  constructor(private readonly marker: string) {}
  /** True once the marker line has been seen. */
  feed(chunk: Uint8Array | string): boolean {
    const s = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('latin1');
    this.tail = (this.tail + s).slice(-4096);
    this.buf += s;
    const seen = this.buf.includes(`\n${this.marker}\r\n`) || this.buf.includes(`\n${this.marker}\n`);
    this.buf = this.buf.slice(-2 * this.marker.length);
    return seen;
  }
}

export interface TimedRun {
  cmd: string;
  args: string[];
  cwd: string;
  marker: string;
  timeoutMs: number;
  /** Asks the process to end once the marker has been seen (escalated to SIGKILL after 10 s). */
  stop(child: ChildProcess): void;
}

/** Spawns the command and resolves with the host wall-clock seconds from spawn to the marker line on stdout. */
export function secondsToMarker(r: TimedRun): Promise<number> {
  return new Promise((resolve, reject) => {
    const watch = new MarkerWatch(r.marker);
    const t0 = performance.now();
    const child = spawn(r.cmd, r.args, { cwd: r.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let seconds: number | undefined;
    let failure: Error | undefined;
    let stopping = false;
    let killer: NodeJS.Timeout | undefined;
    /** Ends the child once: politely after the marker, with SIGKILL on failure; SIGKILL anyway after 10 s. */
    const end = (why?: Error): void => {
      if (stopping) return;
      stopping = true;
      failure = why;
      clearTimeout(timer);
      if (why) child.kill('SIGKILL'); else r.stop(child);
      killer = setTimeout(() => { process.stderr.write(`[${r.cmd} still running 10 s after being asked to stop: SIGKILL] `); child.kill('SIGKILL'); }, 10_000);
    };
    const timer = setTimeout(() => end(new Error(`no ${r.marker} within ${r.timeoutMs / 1000} s`)), r.timeoutMs);
    child.stdout.on('data', (b: Buffer) => {
      if (!stopping && watch.feed(b)) { seconds = (performance.now() - t0) / 1000; end(); }
    });
    child.stderr.on('data', (b: Buffer) => watch.feed(b));
    child.stdin.on('error', () => {}); // the child may exit before reading its stdin
    child.on('error', err => end(err));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killer);
      if (seconds !== undefined) return resolve(seconds);
      const why = failure ?? new Error(`exited (status ${code}, signal ${signal}) before ${r.marker}`);
      reject(new Error(`${r.cmd} ${r.args.join(' ')}: ${why.message}; console tail:\n${watch.tail}`));
    });
  });
}

/** Quotes one argument for a POSIX shell, only when needed. */
export const shellQuote = (a: string): string => /^[\w@%+=:,./~-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
export const commandLine = (cmd: string, args: readonly string[]): string => [cmd, ...args].map(shellQuote).join(' ');

export interface HostFacts {
  date: string;
  cpuModel: string;
  cores: number;
  node: string;
  qemu: string;
  commit: string;
  loadAtStart: number[];
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n')[0].trim() : '?';
}

export function hostFacts(cwd: string): HostFacts {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const commit = firstLine('git', ['-C', cwd, 'rev-parse', '--short', 'HEAD']);
  const dirty = spawnSync('git', ['-C', cwd, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).stdout?.trim();
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? '?',
    cores: cpus().length,
    node: process.version,
    qemu: firstLine('qemu-system-riscv64', ['--version']).replace(/^QEMU emulator version /, ''),
    commit: commit + (dirty ? ' with uncommitted changes' : ''),
    loadAtStart: loadavg(),
  };
}

/**
 * Replaces the part of BENCHMARKS.md between `<!-- NAME:begin -->` and `<!-- NAME:end -->` with
 * `body` (markers kept), appending the section when it is not there yet.
 */
export function writeSection(file: string, name: string, body: string): void {
  const begin = `<!-- ${name}:begin -->`, end = `<!-- ${name}:end -->`;
  const section = `${begin}\n${body.trim()}\n${end}`;
  let text = existsSync(file)
    ? readFileSync(file, 'utf8')
    : '# Benchmarks\n\nFigures measured by the scripts in `bench/`; each script rewrites only its own section (between its markers).\n';
  const i = text.indexOf(begin), j = text.indexOf(end);
  if (i >= 0 && j > i) text = text.slice(0, i) + section + text.slice(j + end.length);
  else text = `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, text);
}

/** One line of console output and the host time (performance.now(), ms) at which its end arrived. */
export interface ConsoleLine { text: string; at: number }

/** What a typed command printed: its lines (the command's echo excluded) and its exit status. */
export interface CommandResult { lines: ConsoleLine[]; status: number; sentAt: number }

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
/** Kills every emulator still running when the benchmark process ends (normally or by a signal). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = (): void => { for (const c of liveChildren) c.kill('SIGKILL'); };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => { killAll(); process.exit(130); });
}

/**
 * A guest's serial console as complete lines with arrival times: wait for lines, type commands.
 * Subclasses say where typing goes and feed output to `onOutput`.
 */
export abstract class LineConsole {
  readonly lines: ConsoleLine[] = [];
  private partial = '';
  protected exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  protected readonly stderrTail: string[] = [];
  private readonly waiters = new Set<() => void>();

  protected abstract type(text: string): void;
  /** What is waited on, for error messages. */
  protected abstract readonly what: string;

  protected onOutput(s: string): void {
    const at = performance.now();
    const parts = (this.partial + s).split('\n');
    this.partial = parts.pop()!;
    for (const p of parts) this.lines.push({ text: p.replace(/\r+$/, ''), at });
    if (this.lines.length > 20_000) this.lines.splice(0, 10_000); // a runaway guest must not fill the heap
    this.wake();
  }

  protected wake(): void { for (const w of this.waiters) w(); }

  /** Types `text` as it is (no end marker, nothing waited for). */
  send(text: string): void { this.type(text); }

  /** The last lines of console output and of stderr, for error messages. */
  tail(n = 25): string {
    const err = this.stderrTail.join('').trim();
    return `${this.lines.slice(-n).map(l => l.text).join('\n')}${this.partial ? `\n${this.partial}` : ''}${err ? `\nstderr: ${err.slice(-1500)}` : ''}`;
  }

  /** Resolves with the index of the first line at or after `from` matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs: number, from = 0): Promise<number> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = (): void => {
        for (let i = from; i < this.lines.length; i++) {
          if (pattern.test(this.lines[i].text)) { done(); return resolve(i); }
        }
        from = Math.max(from, this.lines.length);
        if (this.exit) {
          done();
          reject(new Error(`${this.what} exited (status ${this.exit.code}, signal ${this.exit.signal}) while waiting for ${pattern}; console tail:\n${this.tail()}`));
        }
      };
      const done = (): void => { clearTimeout(timer); this.waiters.delete(check); };
      timer = setTimeout(() => { done(); reject(new Error(`${this.what}: no line matching ${pattern} within ${timeoutMs / 1000} s; console tail:\n${this.tail()}`)); }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Types `command` at the shell and waits for it to finish (test/integration/shell-command.ts); fails on timeout, never on a non-zero status. */
  async run(command: string, timeoutMs: number): Promise<CommandResult> {
    const cmd = new ShellCommand(command);
    const from = this.lines.length;
    const sentAt = performance.now();
    this.type(cmd.typed);
    const end = await this.waitForLine(new RegExp(`^${cmd.endMark}\\d+$`), timeoutMs, from);
    const status = Number(this.lines[end].text.slice(cmd.endMark.length));
    let first = from;
    for (let i = end - 1; i >= from; i--) if (this.lines[i].text.endsWith(cmd.begin)) { first = i + 1; break; }
    // printf's leading newline ended the last output line, or made an empty one after a final newline.
    const last = end > first && this.lines[end - 1].text === '' ? end - 1 : end;
    return { lines: this.lines.slice(first, last), status, sentAt };
  }
}

/** An emulator whose serial console is its stdin/stdout (gasang's CLI, `qemu-system-* -nographic`); stop() ends it. */
export class ConsoleProcess extends LineConsole {
  private readonly child: ChildProcess;
  private readonly closed: Promise<void>;
  protected readonly what: string;
  /** Sees the emulator's stderr as it arrives (set right after construction: nothing arrives before). */
  onStderr?: (text: string) => void;

  constructor(readonly cmd: string, readonly args: readonly string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }) {
    super();
    this.what = cmd;
    installExitHook();
    this.child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    liveChildren.add(this.child);
    this.child.stdout!.on('data', (b: Buffer) => this.onOutput(b.toString('latin1')));
    this.child.stderr!.on('data', (b: Buffer) => {
      const text = b.toString('latin1');
      this.onStderr?.(text);
      this.stderrTail.push(text);
      if (this.stderrTail.length > 20) this.stderrTail.shift();
    });
    this.child.stdin!.on('error', () => {}); // the child may exit before reading its stdin
    this.closed = new Promise(resolve => {
      this.child.on('error', err => { this.stderrTail.push(String(err)); this.exit ??= { code: null, signal: null }; this.wake(); resolve(); });
      this.child.on('close', (code, signal) => { liveChildren.delete(this.child); this.exit = { code, signal }; this.wake(); resolve(); });
    });
  }

  protected type(text: string): void { this.child.stdin!.write(text); }

  /** The emulator's process id (for its /proc entries). */
  get pid(): number { return this.child.pid!; }

  /** Ends the emulator: Ctrl-A x on its console (gasang and QEMU's -nographic both quit on it), then SIGTERM after 5 s and SIGKILL after 10 s. */
  async stop(): Promise<void> {
    if (this.exit) return;
    this.child.stdin!.end(Buffer.from([0x01, 0x78]));
    const term = setTimeout(() => this.child.kill('SIGTERM'), 5_000);
    const kill = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.closed;
    clearTimeout(term);
    clearTimeout(kill);
  }
}

/** One `BENCH <name> key=value ...` line printed by a guest workload (see bench/workloads/bench.h). */
export interface BenchLine {
  name: string;
  guestSeconds: number;
  /** Instructions retired while the workload ran its loop (the guest's perf counter), or undefined when the guest had none. */
  insns: number | undefined;
  checksum: string | undefined;
  /** Every key=value field as printed (guest_s, insns, checksum included). */
  fields: Record<string, string>;
}

/** Parses one BENCH result line (the format is fixed by bench/workloads/bench.h); undefined for any other line. */
export function parseBenchLine(line: string): BenchLine | undefined {
  const m = /^BENCH ([\w.-]+)((?: [\w.]+=\S*)*)\s*$/.exec(line);
  if (!m) return undefined;
  const fields: Record<string, string> = {};
  for (const kv of m[2].trim().split(' ').filter(Boolean)) {
    const i = kv.indexOf('=');
    fields[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const guestSeconds = Number(fields.guest_s);
  if (fields.guest_s === undefined || !Number.isFinite(guestSeconds) || guestSeconds < 0) return undefined;
  const insns = fields.insns !== undefined && /^\d+$/.test(fields.insns) ? Number(fields.insns) : undefined;
  const checksum = fields.checksum !== undefined && /^[0-9a-f]{16}$/.test(fields.checksum) ? fields.checksum : undefined;
  if (fields.checksum !== undefined && checksum === undefined) return undefined;
  return { name: m[1], guestSeconds, insns, checksum, fields };
}

/** A `dd` transfer summary: bytes copied and dd's own seconds. */
export interface DdSummary { bytes: number; seconds: number }

/**
 * Parses the summary line of busybox or GNU coreutils dd, e.g. busybox
 * `536870912 bytes (512.0MB) copied, 3.285611 seconds, 155.8MB/s` or GNU
 * `536870912 bytes (537 MB, 512 MiB) copied, 3.28 s, 163 MB/s`; undefined for any other line.
 */
export function parseDdSummary(line: string): DdSummary | undefined {
  const m = /^(\d+) bytes \([^)]*\) copied, ([\d.]+) (?:seconds|s),/.exec(line.trim());
  if (!m) return undefined;
  const bytes = Number(m[1]), seconds = Number(m[2]);
  return Number.isFinite(seconds) ? { bytes, seconds } : undefined;
}

/** Debian's stock kernel as fetched by scripts/fetch-debian-guest.sh. */
export interface DebianKernel { kernel: string; initrd: string; release: string }

export const cacheDir = (): string => process.env.GASANG_CACHE ?? join(homedir(), '.cache', 'gasang');

export function debianKernel(): DebianKernel {
  const dir = join(cacheDir(), 'debian');
  const kernel = join(dir, 'vmlinux'), initrd = join(dir, 'initramfs.cpio.gz');
  if (!existsSync(kernel) || !existsSync(initrd)) throw new Error(`${kernel} or ${initrd} missing: run scripts/fetch-debian-guest.sh first`);
  return { kernel, initrd, release: readFileSync(join(dir, 'kernel-version'), 'utf8').trim() };
}

/** Builds (when its inputs changed) and returns the benchmark initramfs: the Debian guest's plus /bench/<workload>. */
export function benchInitramfs(repo: string): string {
  const r = spawnSync('bash', [join(repo, 'scripts/build-bench-guest.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const path = r.stdout?.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !existsSync(path)) throw new Error(`scripts/build-bench-guest.sh failed (status ${r.status})`);
  return path;
}

/** The three machines the benchmarks compare: gasang with its JIT, gasang's interpreter alone, QEMU TCG. */
export type Emulator = 'jit' | 'interp' | 'qemu';
export const EMULATOR_TITLE: Record<Emulator, string> = { jit: 'gasang JIT', interp: 'gasang interpreter', qemu: 'QEMU TCG' };

export interface Boot {
  firmware: string;
  kernel: string;
  initrd: string;
  append: string;
  memoryMiB: number;
  /** Disks as gasang's --drive values (file=...,format=...), in order; QEMU gets the same as virtio-mmio disks. */
  drives?: { file: string; format: 'raw' | 'qcow2' }[];
  /**
   * One user-mode network card (eth0) with these port forwards (`tcp:127.0.0.1:HOSTPORT-:GUESTPORT`):
   * gasang `--nic user,hostfwd=...`, QEMU `-netdev user,hostfwd=...` on a virtio-net-device (virtio-mmio).
   */
  userNet?: { hostfwd: string[] };
}

/** The command line that boots `b` on emulator `e` with one hart, its console on stdin/stdout. */
export function emulatorCommand(e: Emulator, b: Boot): { cmd: string; args: string[] } {
  const drives = b.drives ?? [];
  if (e === 'qemu') {
    return {
      cmd: 'qemu-system-riscv64',
      args: ['-M', 'virt', '-m', String(b.memoryMiB), '-smp', '1', '-nographic', '-bios', b.firmware, '-kernel', b.kernel,
        '-initrd', b.initrd, '-append', b.append,
        // -drive if=none + virtio-blk-device: virtio over MMIO, the transport gasang has (if=virtio would be PCI on -M virt).
        ...drives.flatMap((d, i) => ['-drive', `file=${d.file},format=${d.format},if=none,id=d${i}`, '-device', `virtio-blk-device,drive=d${i}`]),
        // virtio-net-device: virtio over MMIO, as for the disks (-nic user would be a PCI card on -M virt).
        ...(b.userNet ? ['-netdev', ['user', 'id=n0', ...b.userNet.hostfwd.map(f => `hostfwd=${f}`)].join(','), '-device', 'virtio-net-device,netdev=n0'] : [])],
    };
  }
  return {
    cmd: 'node',
    args: ['dist/src/cli/main.js', 'run', '--kernel', b.kernel, '--initrd', b.initrd, '--firmware', b.firmware, '--append', b.append,
      '--memory', String(b.memoryMiB), '--cpus', '1', '--jit', e === 'jit' ? 'on' : 'off',
      ...drives.flatMap(d => ['--drive', `file=${d.file},format=${d.format}`]),
      ...(b.userNet ? ['--nic', ['user', ...b.userNet.hostfwd.map(f => `hostfwd=${f}`)].join(',')] : [])],
  };
}

/** Boots `b` on `e` and waits for the guest's GASANG-READY line. The caller stops the process. */
export async function bootToShell(e: Emulator, b: Boot, cwd: string, timeoutMs: number): Promise<ConsoleProcess> {
  const { cmd, args } = emulatorCommand(e, b);
  const p = new ConsoleProcess(cmd === 'node' ? process.execPath : cmd, args, { cwd });
  try {
    await p.waitForLine(/^GASANG-READY$/, timeoutMs);
  } catch (err) {
    await p.stop();
    throw err;
  }
  return p;
}

/** A workload's result line with the host's view of the same interval (BENCH-START line to BENCH line). */
export interface TimedBench extends BenchLine { hostSeconds: number }

/** The BENCH lines of a command's output, each timed by the host from the BENCH-START line before it. */
export function timedBenchLines(lines: readonly ConsoleLine[]): TimedBench[] {
  const out: TimedBench[] = [];
  let startAt: number | undefined;
  for (const l of lines) {
    if (l.text.startsWith('BENCH-START ')) { startAt = l.at; continue; }
    const b = parseBenchLine(l.text);
    if (b && startAt !== undefined) out.push({ ...b, hostSeconds: (l.at - startAt) / 1000 });
    if (b) startAt = undefined;
  }
  return out;
}

export const loadText = (l: readonly number[]): string => l.map(x => x.toFixed(2)).join(' ');

/** The console of a VM of an in-process Host (src/vm/host.ts, as gasangd runs it), read in lines. */
export class VmConsole extends LineConsole {
  protected readonly what: string;
  private readonly client: ConsoleClient;
  constructor(vm: VmHandle, name: string) {
    super();
    this.what = `VM ${name}`;
    this.client = vm.attachConsole({ write: true });
    this.client.onData(b => this.onOutput(Buffer.from(b).toString('latin1')));
  }
  protected type(text: string): void { this.client.write(text); }
  detach(): void { this.client.detach(); }
}
