/**
 * gasangd as a child process on a temporary socket and state directory (and TCP when asked), and
 * a VM console over its WebSocket used as a person at the console would: wait for text, type a
 * command, read what it printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import type { WsConnection } from '../../src/api/websocket.js';
import { REPO } from './guest.js';
import { ShellCommand, withoutFinalNewline, type ShellResult } from './shell-command.js';

export const GASANGD = join(REPO, 'dist', 'src', 'cli', 'gasangd.js');

export class DaemonProcess {
  readonly client: ApiClient;
  /** Parsed JSON log lines from stderr. */
  readonly logs: Record<string, unknown>[] = [];
  stderr = '';
  port: number | undefined;
  private readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  private constructor(readonly socketPath: string, args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [GASANGD, '--socket', socketPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    this.client = new ApiClient({ socketPath });
    let partial = '';
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (s: string) => {
      this.stderr += s;
      partial += s;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const l of lines) { try { this.logs.push(JSON.parse(l) as Record<string, unknown>); } catch { /* not a log line */ } }
    });
    this.exited = new Promise(r => this.child.on('exit', code => r(code)));
  }

  /** Starts gasangd and waits until it listens (on TCP too when --listen is among `args`). */
  static async start(socketPath: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<DaemonProcess> {
    const d = new DaemonProcess(socketPath, args, env);
    const tcp = args.includes('--listen');
    const deadline = Date.now() + 30_000;
    for (;;) {
      const unix = d.logs.some(l => l.msg === 'listening' && l.transport === 'unix');
      const t = d.logs.find(l => l.msg === 'listening' && l.transport === 'tcp');
      if (unix && (!tcp || t)) { d.port = t?.port as number | undefined; return d; }
      if (d.child.exitCode !== null) throw new Error(`gasangd exited (${d.child.exitCode}): ${d.stderr}`);
      if (Date.now() > deadline) throw new Error(`gasangd did not start: ${d.stderr}`);
      await new Promise(r => setTimeout(r, 50));
    }
  }

  /** SIGTERM, then the exit status. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }

  kill(): void { if (this.child.exitCode === null) this.child.kill('SIGKILL'); }
}

export class ConsoleSession {
  text = '';
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WsConnection) {
    ws.on('message', (data, binary) => {
      if (binary) this.text += data.toString('latin1');
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves with the console text since `from` once it matches `pattern`. */
  waitFor(pattern: string | RegExp, ms = 120_000, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Timed out waiting for ${pattern}; console tail:\n${this.text.slice(-1500)}`)), ms);
      const check = (): void => {
        const rest = this.text.slice(from);
        if (typeof pattern === 'string' ? rest.includes(pattern) : pattern.test(rest)) { clearTimeout(timer); resolve(rest); } else this.waiters.push(check);
      };
      check();
    });
  }

  /** Types `command` and returns what it printed (shell-command.ts), without the final newline. */
  async run(command: string, ms = 60_000): Promise<string> {
    return withoutFinalNewline((await this.exec(command, ms)).output);
  }

  /** Types `command` and returns its exact output and exit status. */
  exec(command: string, ms = 60_000): Promise<ShellResult> {
    const cmd = new ShellCommand(command);
    const from = this.text.length;
    this.ws.send(cmd.typed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Timed out waiting for the end of: ${command}; console tail:\n${this.text.slice(-1500)}`)), ms);
      const check = (): void => {
        const r = cmd.parse(this.text, from);
        if (r) { clearTimeout(timer); resolve(r); } else this.waiters.push(check);
      };
      check();
    });
  }
}
