/**
 * A booted guest for integration tests (after Firecracker's `Microvm` fixture): boot, wait for
 * console text, type commands, and wait for power-off — so tests read like a session at the console.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { VirtMachine, type PowerOff, type VirtDrive, type VirtSpec } from '../../src/machine/virt.js';
import { openDisk, type DiskFormat } from '../../src/storage/open.js';
import { IoThrottle, type ThrottleLimits } from '../../src/storage/throttle.js';
import { ShellCommand, withoutFinalNewline, type ShellResult } from './shell-command.js';

export const REPO = join(import.meta.dirname, '..', '..', '..');
export const FW_JUMP = join(REPO, 'guest', 'default', 'fw_jump.bin');
export const BUNDLED = {
  kernel: join(REPO, 'guest', 'default', 'Image.gz'),
  initrd: join(REPO, 'guest', 'default', 'initramfs.cpio.gz'),
};
const CACHE = join(process.env.GASANG_CACHE ?? join(homedir(), '.cache', 'gasang'), 'debian');
/** Debian's stock kernel and busybox initramfs, fetched by scripts/fetch-debian-guest.sh. */
export const DEBIAN = { kernel: join(CACHE, 'vmlinux'), initrd: join(CACHE, 'initramfs.cpio.gz') };
export const debianAvailable = (): boolean => existsSync(DEBIAN.kernel) && existsSync(DEBIAN.initrd);
/** scripts/build-debian-rootfs.sh's output: a link to the image of the current build stamp. */
export const DEBIAN_ROOTFS = join(CACHE, '..', 'debian-rootfs', 'rootfs.ext4');
/** Why the Debian root filesystem tests cannot run here, if they cannot. */
export const debianRootfsMissing = (): string | undefined => !existsSync(DEBIAN_ROOTFS) ? 'run scripts/build-debian-rootfs.sh (as root) first'
  : !debianAvailable() ? 'run scripts/fetch-debian-guest.sh first' : undefined;

export const READY = 'GASANG-READY';

/** A disk image for Guest.boot({ drives }) (format probed unless given), as `--drive` opens it. */
export function drive(file: string, opts: { format?: DiskFormat; readOnly?: boolean; throttle?: ThrottleLimits } = {}): VirtDrive {
  return { disk: openDisk({ file, format: opts.format, readOnly: opts.readOnly }), throttle: opts.throttle && new IoThrottle(opts.throttle) };
}

export class Guest {
  private text = '';
  /** What the guest wrote to each virtio console (hvc device of the virtio console `index`). */
  readonly hvc: string[] = [];
  /** Virtio guest-error and host I/O reports. */
  readonly log: string[] = [];
  /** Extra text for timeout messages (e.g. device state). */
  onTimeout: (() => string) | undefined;
  private waiters: { pattern: string | RegExp; from: number; resolve: (s: string) => void }[] = [];
  /** Commands waiting for their end marker: each returns true once it has its result. */
  private commands: (() => boolean)[] = [];
  private end: Promise<PowerOff>;

  private constructor(readonly vm: VirtMachine) {
    this.end = vm.run();
  }

  static async boot(spec: Partial<VirtSpec> & Pick<VirtSpec, 'kernel'>): Promise<Guest> {
    let guest: Guest | undefined;
    const vm = await VirtMachine.create(
      { memoryMiB: 256, cpus: 1, firmware: FW_JUMP, append: 'console=ttyS0', ...spec },
      {
        output: bytes => guest?.onOutput(Buffer.from(bytes).toString('latin1')),
        consoleOutput: (i, bytes) => { if (guest) guest.hvc[i] = (guest.hvc[i] ?? '') + Buffer.from(bytes).toString('latin1'); },
        log: line => guest?.log.push(line),
      },
    );
    guest = new Guest(vm);
    return guest;
  }

  /** Everything the console has printed so far. */
  get console(): string { return this.text; }

  private onOutput(s: string): void {
    this.text += s;
    if (this.commands.length) this.commands = this.commands.filter(c => !c());
    this.waiters = this.waiters.filter(w => {
      const rest = this.text.slice(w.from);
      const m = typeof w.pattern === 'string' ? rest.includes(w.pattern) : w.pattern.test(rest);
      if (m) w.resolve(rest);
      return !m;
    });
  }

  /** Resolves with the console text since `from` once it contains `pattern`. */
  waitFor(pattern: string | RegExp, timeoutMs = 120_000, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Timed out waiting for ${pattern}; ${this.onTimeout?.() ?? ''}\nconsole tail:\n${this.text.slice(-2000)}`)), timeoutMs);
      const done = (s: string): void => { clearTimeout(timer); resolve(s); };
      this.waiters.push({ pattern, from, resolve: done });
      this.onOutput('');
    });
  }

  /** Types `command` and returns what it printed (shell-command.ts), without the final newline. */
  async run(command: string, timeoutMs = 60_000): Promise<string> {
    return withoutFinalNewline((await this.exec(command, timeoutMs)).output);
  }

  /** Types `command` and returns its exact output and exit status. */
  async exec(command: string, timeoutMs = 60_000): Promise<ShellResult> {
    const cmd = new ShellCommand(command);
    const from = this.text.length;
    this.vm.input(Buffer.from(cmd.typed));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Timed out waiting for the end of: ${command}; ${this.onTimeout?.() ?? ''}\nconsole tail:\n${this.text.slice(-2000)}`)), timeoutMs);
      const check = (): boolean => {
        const r = cmd.parse(this.text, from);
        if (r) { clearTimeout(timer); resolve(r); }
        return r !== undefined;
      };
      if (!check()) this.commands.push(check);
    });
  }

  /** Asks the guest to power off and waits for it (a guest that does not is a failure with its console, not a hang). */
  async powerOff(timeoutMs = 120_000): Promise<PowerOff> {
    this.vm.input(Buffer.from('poweroff\n'));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`No power-off ${timeoutMs} ms after typing poweroff; ${this.onTimeout?.() ?? ''}\nconsole tail:\n${this.text.slice(-2000)}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.end, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves when the machine has stopped, however it stopped. */
  get ended(): Promise<PowerOff> { return this.end; }

  /** Stops the VM from the host (like Ctrl-A x); harmless after power-off. */
  async kill(): Promise<void> { this.vm.stop(); await this.end; }
}
