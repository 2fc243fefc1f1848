/**
 * The guest's serial console on the host terminal, with QEMU's escape keys:
 *
 *   Ctrl-A x       quit
 *   Ctrl-A h / ?   print the keys
 *   Ctrl-A b       send a break (magic SysRq on a Linux console)
 *   Ctrl-A Ctrl-A  send one Ctrl-A
 *
 * When stdin is a TTY it is put in raw mode (keys go to the guest as typed, Ctrl-C included) and
 * restored on detach, on process exit, on SIGTERM/SIGHUP/SIGINT/SIGQUIT (then re-raised) and on
 * uncaught exceptions. When stdin is not a TTY (pipes, tests) bytes pass through unchanged,
 * except that Ctrl-A x still quits.
 */

export const ESCAPE = 0x01; // Ctrl-A

export const CONSOLE_HELP =
  '\r\nC-a h    print this help\r\n' +
  'C-a x    exit emulator\r\n' +
  'C-a b    send break (magic sysrq)\r\n' +
  'C-a C-a  sends C-a\r\n';

/** What the console needs from stdin (a net.Socket / tty.ReadStream / PassThrough all fit). */
export interface ConsoleInputStream {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
  on(event: 'data', fn: (chunk: Uint8Array | string) => void): unknown;
  on(event: 'end', fn: () => void): unknown;
  off(event: 'data', fn: (chunk: Uint8Array | string) => void): unknown;
  off(event: 'end', fn: () => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

export interface ByteSink {
  write(chunk: Uint8Array | string): unknown;
}

/** The parts of `process` the console hooks for restoring the terminal. */
export interface ProcessHooks {
  readonly pid: number;
  on(event: string, fn: (...args: any[]) => void): unknown;
  off(event: string, fn: (...args: any[]) => void): unknown;
  kill(pid: number, signal: string): unknown;
}

export interface ConsoleOptions {
  input: ConsoleInputStream;
  /** Where Ctrl-A h prints its help. */
  output: ByteSink;
  /** Bytes for the guest (one call per input chunk, escapes removed). */
  onInput: (bytes: Uint8Array) => void;
  /** Ctrl-A x. */
  onQuit: () => void;
  /** Ctrl-A b. */
  onBreak?: () => void;
  /** stdin closed. */
  onEnd?: () => void;
  /** Default: the global `process`. */
  process?: ProcessHooks;
}

const RESTORE_SIGNALS = ['SIGTERM', 'SIGHUP', 'SIGINT', 'SIGQUIT'] as const;

/** Reads the console from stdin until detach(). */
export class ConsoleInput {
  /** True when stdin is a TTY (raw mode, full escape keys). */
  readonly interactive: boolean;
  private readonly opts: ConsoleOptions;
  private readonly proc: ProcessHooks | undefined;
  private escaped = false;
  private attached = false;
  private raw = false;
  private readonly onData = (chunk: Uint8Array | string): void => this.handle(typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk);
  private readonly onEnd = (): void => this.opts.onEnd?.();
  private readonly restore = (): void => this.setRaw(false);
  private readonly onSignal = (signal: string): void => {
    this.setRaw(false);
    this.unhookProcess();
    this.proc?.kill(this.proc.pid, signal); // default action, now that our handler is gone
  };

  constructor(opts: ConsoleOptions) {
    this.opts = opts;
    this.interactive = opts.input.isTTY === true && typeof opts.input.setRawMode === 'function';
    this.proc = opts.process ?? (globalThis.process as unknown as ProcessHooks | undefined);
  }

  /** Starts reading (and enters raw mode on a TTY). */
  attach(): this {
    if (this.attached) return this;
    this.attached = true;
    if (this.interactive) {
      this.setRaw(true);
      if (this.proc) {
        this.proc.on('exit', this.restore);
        this.proc.on('uncaughtExceptionMonitor', this.restore);
        for (const s of RESTORE_SIGNALS) this.proc.on(s, this.onSignal);
      }
    }
    this.opts.input.on('data', this.onData);
    this.opts.input.on('end', this.onEnd);
    this.opts.input.resume();
    return this;
  }

  /** Stops reading and gives the terminal back as it was. */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.opts.input.off('data', this.onData);
    this.opts.input.off('end', this.onEnd);
    this.opts.input.pause();
    this.setRaw(false);
    this.unhookProcess();
  }

  /** Processes one chunk of input (public for tests and for other input sources). */
  handle(chunk: Uint8Array): void {
    const out = new Uint8Array(chunk.length + 1);
    let n = 0;
    for (const b of chunk) {
      if (this.escaped) {
        this.escaped = false;
        if (b === 0x78 /* x */) {
          if (n) this.opts.onInput(out.slice(0, n));
          this.opts.onQuit();
          return;
        }
        if (!this.interactive) {
          // Pipes: only Ctrl-A x is special.
          out[n++] = ESCAPE;
          if (b === ESCAPE) this.escaped = true;
          else out[n++] = b;
          continue;
        }
        if (b === ESCAPE) out[n++] = ESCAPE;
        else if (b === 0x68 /* h */ || b === 0x3f /* ? */) this.opts.output.write(CONSOLE_HELP);
        else if (b === 0x62 /* b */) {
          if (n) this.opts.onInput(out.slice(0, n));
          n = 0;
          this.opts.onBreak?.();
        }
        // Other keys after Ctrl-A are swallowed, as in QEMU.
      } else if (b === ESCAPE) {
        this.escaped = true;
      } else {
        out[n++] = b;
      }
    }
    if (n) this.opts.onInput(out.slice(0, n));
  }

  private setRaw(on: boolean): void {
    if (!this.interactive || this.raw === on) return;
    this.raw = on;
    this.opts.input.setRawMode!(on);
  }

  private unhookProcess(): void {
    if (!this.proc) return;
    this.proc.off('exit', this.restore);
    this.proc.off('uncaughtExceptionMonitor', this.restore);
    for (const s of RESTORE_SIGNALS) this.proc.off(s, this.onSignal);
  }
}

/** Reads the console: `attachConsole({...}).detach()` when done. */
export function attachConsole(opts: ConsoleOptions): ConsoleInput {
  return new ConsoleInput(opts).attach();
}

export interface OutputBatcherOptions {
  /** Runs the flush later (default: setImmediate, i.e. once per event-loop turn). */
  schedule?: (fn: () => void) => void;
  /** Flush at once when this many bytes are waiting (default 64 KiB). */
  highWater?: number;
}

/** Collects guest console bytes and writes them to the host in one chunk per event-loop turn. */
export class OutputBatcher {
  private buf: Uint8Array;
  private n = 0;
  private scheduled = false;
  private readonly schedule: (fn: () => void) => void;
  private readonly highWater: number;
  private readonly flushLater = (): void => {
    this.scheduled = false;
    this.flush();
  };

  constructor(private readonly sink: ByteSink, opts: OutputBatcherOptions = {}) {
    this.schedule = opts.schedule ?? ((fn) => setImmediate(fn));
    this.highWater = opts.highWater ?? 64 * 1024;
    this.buf = new Uint8Array(Math.min(this.highWater, 4096));
  }

  /** One byte (fits Uart16550's onOutput). */
  push(byte: number): void {
    if (this.n === this.buf.length) this.grow(this.n + 1);
    this.buf[this.n++] = byte;
    this.afterAppend();
  }

  write(bytes: Uint8Array): void {
    if (this.n + bytes.length > this.buf.length) this.grow(this.n + bytes.length);
    this.buf.set(bytes, this.n);
    this.n += bytes.length;
    this.afterAppend();
  }

  /** Writes whatever is waiting now. */
  flush(): void {
    if (this.n === 0) return;
    const chunk = this.buf.slice(0, this.n); // the sink may keep the chunk: hand it a copy
    this.n = 0;
    this.sink.write(chunk);
  }

  private afterAppend(): void {
    if (this.n >= this.highWater) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(this.flushLater);
    }
  }

  private grow(min: number): void {
    let size = this.buf.length * 2;
    while (size < min) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.buf.subarray(0, this.n));
    this.buf = bigger;
  }
}
