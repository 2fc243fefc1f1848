/** Helpers for the benchmarks: timing a process to a console marker, statistics, host facts, BENCHMARKS.md sections. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

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
