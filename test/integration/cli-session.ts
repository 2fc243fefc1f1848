/**
 * `gasang run` as a child process driven through its stdin and stdout, as a user at the console
 * would: wait for text, type a command and read what it printed, kill the process.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './guest.js';
import { ShellCommand, withoutFinalNewline, type ShellResult } from './shell-command.js';

export const CLI = join(REPO, 'dist', 'src', 'cli', 'main.js');

export class CliSession {
  out = '';
  err = '';
  readonly started = Date.now();
  /** Exit status, or the signal that ended the process. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcessWithoutNullStreams;
  private listeners: (() => void)[] = [];

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [CLI, 'run', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('latin1');
    this.child.stderr.setEncoding('latin1');
    this.child.stdout.on('data', (d: string) => { this.out += d; this.notify(); });
    this.child.stderr.on('data', (d: string) => { this.err += d; this.notify(); });
    this.child.stdin.on('error', () => {}); // writes after the process died are not the test's failure
    this.exited = new Promise(r => this.child.on('exit', (code, signal) => { r({ code, signal }); this.notify(); }));
  }

  get pid(): number | undefined { return this.child.pid; }

  /** Seconds since the process was started. */
  get seconds(): number { return (Date.now() - this.started) / 1000; }

  private notify(): void { for (const l of this.listeners.splice(0)) l(); }

  /** Resolves once `test(out, err)` holds (checked on every output), rejects after `ms`. */
  until(test: (out: string, err: string) => boolean, ms: number, what: string): Promise<void> {
    const end = Date.now() + ms;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        let met: boolean;
        try { met = test(this.out, this.err); } catch (err) { return reject(err); }
        if (met) return resolve();
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          return reject(new Error(`gasang exited while waiting for ${what}; output tail:\n${this.out.slice(-1500)}\nstderr: ${this.err}`));
        }
        const left = end - Date.now();
        if (left <= 0) return reject(new Error(`Timed out waiting for ${what}; output tail:\n${this.out.slice(-1500)}\nstderr: ${this.err}`));
        const timer = setTimeout(check, left);
        this.listeners.push(() => { clearTimeout(timer); check(); });
      };
      check();
    });
  }

  /** Waits for `text` on the console. */
  waitFor(text: string, ms = 120_000): Promise<void> {
    return this.until(out => out.includes(text), ms, JSON.stringify(text));
  }

  /** Runs `command` in the guest shell; resolves with what it printed (shell-command.ts), without the final newline. */
  async run(command: string, ms = 60_000): Promise<string> {
    return withoutFinalNewline((await this.exec(command, ms)).output);
  }

  /** Runs `command` in the guest shell; resolves with its exact output and exit status. */
  async exec(command: string, ms = 60_000): Promise<ShellResult> {
    const cmd = new ShellCommand(command);
    const from = this.out.length;
    this.child.stdin.write(cmd.typed);
    let result: ShellResult | undefined;
    await this.until(out => (result = cmd.parse(out, from)) !== undefined, ms, `the end of: ${command}`);
    return result!;
  }

  send(text: string): void { this.child.stdin.write(text); }

  /** Sends `signal` (default SIGTERM); harmless once the process has exited. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}
