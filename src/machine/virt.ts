/**
 * The `virt` board: CPU, RAM, CLINT, PLIC, UART, syscon, RTC and virtio-mmio devices on QEMU's
 * memory map, booted with real firmware, and the loop that runs its harts on one host thread
 * (interleaved), sleeping while every hart waits in WFI.
 *
 * Virtio devices take the slots in this order: drives (the first is /dev/vda), consoles,
 * the entropy device, network cards, then any further devices. They serve requests synchronously when the guest
 * kicks a queue; work that completes later (throttled disk I/O, console input) raises the
 * device's interrupt line, which also wakes the loop if every hart sleeps.
 */
import { Cpu } from '../cpu/index.js';
import { H } from '../cpu/layout.js';
import { Bus } from '../memory/bus.js';
import { Clint } from './clint.js';
import { Plic } from './plic.js';
import { Uart16550 } from './uart16550.js';
import { Syscon, type PowerEvent } from './syscon.js';
import { GoldfishRtc } from './rtc-goldfish.js';
import { buildVirtFdt } from './virt-fdt.js';
import { loadBoot } from './boot-loader.js';
import * as Map from './memory-map.js';
import type { HartInterrupts } from './irq.js';
import { GasangError } from '../util/errors.js';
import type { BlockDevice } from '../storage/block.js';
import type { VirtioDevice } from '../devices/virtio/device.js';
import { VirtioMmio } from '../devices/virtio/mmio.js';
import { VirtioBlk, type BlkThrottle } from '../devices/virtio/blk/device.js';
import { VirtioConsole } from '../devices/virtio/console/device.js';
import { VirtioRng } from '../devices/virtio/rng/device.js';
import { VirtioNet } from '../devices/virtio/net/device.js';
import type { NetBackend } from '../devices/virtio/net/backend.js';
import { PowerButton, withPowerBootarg } from './power-button.js';

/** The board's hardware: what a snapshot must be restored into. */
export interface VirtBoardSpec {
  memoryMiB: number;
  cpus: number;
  /** Disks, in order: the first is /dev/vda. */
  drives?: VirtDrive[];
  /** virtio-console devices: hvc terminals in the guest (hvc1 first when, as in the bundled kernel, the SBI console is hvc0). */
  consoles?: number;
  /** A virtio-rng entropy device (the guest's /dev/hwrng). */
  rng?: boolean;
  /** Network cards, in order: eth0 first. */
  nics?: VirtNic[];
  /** Further virtio devices (e.g. 9P shares), on the slots after the others. */
  devices?: VirtioDevice[];
  /** false: interpreter only. Default: the CPU's default (JIT on). */
  jit?: boolean;
  /** A power button (power-button.ts): a virtio-input device after the consoles; adds its boot argument. */
  powerButton?: boolean;
}

/** A board and what it boots. */
export interface VirtSpec extends VirtBoardSpec {
  firmware: string;
  kernel: string;
  initrd?: string;
  append: string;
}

/** An opened disk for a virtio-blk device; the machine closes it when the run ends. */
export interface VirtDrive {
  disk: BlockDevice;
  throttle?: BlkThrottle;
  /** GET_ID answer, at most 20 bytes (default "gasang-vdX"). */
  serial?: string;
}

/** A virtio-net card and the network behind it; the machine closes the backend when the run ends. */
export interface VirtNic {
  mac: Uint8Array;
  backend: NetBackend;
}

export interface VirtIo {
  /** Console bytes from the guest's UART. */
  output(bytes: Uint8Array): void;
  /** Bytes the guest wrote to virtio console `index`; default: to output(). */
  consoleOutput?(index: number, bytes: Uint8Array): void;
  /** One-line reports of guest errors (malformed virtqueues) and host I/O errors. */
  log?(line: string): void;
}

export type PowerOff = { kind: PowerEvent; code: number };

/** Lets a host scheduler hold the run loop between slices (src/vm/worker-main.ts). */
export interface RunGate {
  /** Before each slice; may block the thread until the VM may run again. */
  enter(): void;
  /** After each slice; `busy`: the harts used all of it (not all waiting in WFI). */
  leave(busy: boolean): void;
  /**
   * Longest sleep while every hart waits (default IDLE_WAKE_MS). Timers and device interrupts
   * wake the loop anyway; a host running many idle VMs raises it so they cost nothing.
   */
  readonly maxSleepMs?: number;
}

/** Instructions a hart runs before the loop looks at timers and the other harts. */
const QUANTUM = 40_000;
/** Longest stretch of guest execution before the host event loop gets a turn (ms). */
const SLICE_MS = 8;
/** Longest sleep while every hart waits, unless the run gate says otherwise (ms). */
const IDLE_WAKE_MS = 100;

export class VirtMachine {
  readonly clint: Clint;
  readonly plic: Plic;
  readonly uart: Uart16550;
  readonly rtc: GoldfishRtc;
  /** virtio-mmio transports by slot (slot i at virtioBase(i), PLIC source virtioIrq(i)). */
  readonly virtio: VirtioMmio[] = [];
  readonly drives: VirtioBlk[] = [];
  readonly nics: VirtioNet[] = [];
  readonly consoles: VirtioConsole[] = [];
  readonly powerButton: PowerButton | undefined;
  /** The device tree the guest booted with. */
  fdt = new Uint8Array(0);
  /** Things the user should know about the boot layout (from the loader). */
  warnings: string[] = [];
  private power: PowerOff | undefined;
  /** UART output of the current slice, not yet handed to io.output: bytes [0, outLen). */
  private out = new Uint8Array(4096);
  private outLen = 0;
  private wake: (() => void) | undefined;
  private holds = 0;
  private released: (() => void) | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;

  private constructor(readonly spec: VirtBoardSpec, readonly cpu: Cpu, readonly bus: Bus, private readonly io: VirtIo) {
    const irq: HartInterrupts = { setPending: (hart, bit, level) => cpu.harts[hart].setPending(bit, level) };
    this.clint = new Clint({ harts: spec.cpus, irq });
    this.plic = new Plic({ harts: spec.cpus, irq });
    this.uart = new Uart16550({ onOutput: b => this.putOutput(b), setIrq: this.plic.line(Map.UART0_IRQ) });
    const syscon = new Syscon({ onPower: (kind, code) => { this.power = { kind, code }; cpu.stopped = true; } });
    const rtc = this.rtc = new GoldfishRtc({ setIrq: this.plic.line(Map.RTC_IRQ) });
    this.bus.map(Map.CLINT_BASE, Map.CLINT_SIZE, this.clint);
    this.bus.map(Map.PLIC_BASE, Map.PLIC_SIZE, this.plic);
    this.bus.map(Map.UART0_BASE, Map.UART0_SIZE, this.uart);
    this.bus.map(Map.TEST_BASE, Map.TEST_SIZE, syscon);
    this.bus.map(Map.RTC_BASE, Map.RTC_SIZE, rtc);
    if (spec.powerButton) this.powerButton = new PowerButton();
    this.addVirtioDevices();
  }

  private addVirtioDevices(): void {
    const { spec, io } = this;
    const devices: VirtioDevice[] = [];
    (spec.drives ?? []).forEach((d, i) => {
      const blk = new VirtioBlk({ disk: d.disk, throttle: d.throttle, serial: d.serial ?? `gasang-vd${String.fromCharCode(97 + i)}`, log: io.log });
      this.drives.push(blk);
      devices.push(blk);
    });
    for (let i = 0; i < (spec.consoles ?? 0); i++) {
      const sink = io.consoleOutput ? (b: Uint8Array) => io.consoleOutput!(i, b) : (b: Uint8Array) => io.output(b);
      const con = new VirtioConsole({ output: sink });
      this.consoles.push(con);
      devices.push(con);
    }
    if (this.powerButton) devices.push(this.powerButton.device);
    if (spec.rng) devices.push(new VirtioRng());
    for (const nic of spec.nics ?? []) {
      const net = new VirtioNet({ mac: nic.mac, backend: nic.backend });
      this.nics.push(net);
      devices.push(net);
    }
    devices.push(...(spec.devices ?? []));
    if (devices.length > Map.VIRTIO_COUNT) {
      throw new GasangError('virt-slots', `${devices.length} virtio devices; the board has ${Map.VIRTIO_COUNT} slots`);
    }
    const mem = this.cpu.guestMemory();
    devices.forEach((device, slot) => {
      const line = this.plic.line(Map.virtioIrq(slot));
      const transport = new VirtioMmio({
        device,
        mem,
        // A device completing work outside a guest access (a timer, host input) must wake a sleeping loop.
        irq: level => { line(level); if (level) this.wake?.(); },
        log: io.log,
      });
      this.bus.map(Map.virtioBase(slot), Map.VIRTIO_SIZE, transport);
      this.virtio.push(transport);
    });
  }

  private static async build(spec: VirtBoardSpec, io: VirtIo): Promise<VirtMachine> {
    const bus = new Bus();
    let m: VirtMachine | undefined;
    const cpu = await Cpu.create({ ramBytes: spec.memoryMiB * 1024 * 1024, harts: spec.cpus, bus, mtime: () => m!.clint.mtime(), jitThreshold: spec.jit === false ? 0 : undefined });
    m = new VirtMachine(spec, cpu, bus, io);
    return m;
  }

  /** A board at power-on with firmware, kernel, initrd and device tree loaded. */
  static async create(spec: VirtSpec, io: VirtIo): Promise<VirtMachine> {
    const m = await VirtMachine.build(spec, io);
    const cpu = m.cpu;
    const boot = loadBoot(cpu.ram, {
      firmware: spec.firmware,
      kernel: spec.kernel,
      initrd: spec.initrd,
      fdt: initrd => (m!.fdt = buildVirtFdt({
        memoryBytes: cpu.ram.length, harts: spec.cpus, bootargs: spec.powerButton ? withPowerBootarg(spec.append) : spec.append, initrd,
        virtio: m!.virtio.map((_, slot) => ({ base: Map.virtioBase(slot), irq: Map.virtioIrq(slot) })),
      })),
    });
    for (const h of cpu.harts) h.reset(boot.pc, boot.a1, boot.a2);
    m.warnings = boot.warnings;
    return m;
  }

  /**
   * A board of `spec`'s shape with a saved state: `load` fills RAM and applies the rest
   * (virt-state.ts restoreVirt). As with create, the caller closes what it opened when this throws.
   */
  static async restore(spec: VirtBoardSpec, io: VirtIo, load: (m: VirtMachine) => void | Promise<void>): Promise<VirtMachine> {
    const m = await VirtMachine.build(spec, io);
    await load(m);
    return m;
  }

  /** Bytes typed at the console. */
  input(bytes: ArrayLike<number>): void {
    this.uart.pushInput(bytes);
    this.wake?.();
  }

  /** Bytes typed at virtio console `index`. */
  consoleInput(index: number, bytes: ArrayLike<number>): void {
    this.consoles[index]?.input(bytes);
  }

  /**
   * Holds the harts from the next slice on (the event loop runs on: a migration's last pages go
   * out meanwhile); returns the release. Call it between slices.
   */
  hold(): () => void {
    this.holds++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.holds === 0) this.released?.();
    };
  }

  /** Asks the run loop to stop soon (Ctrl-A x). */
  stop(): void { this.power ??= { kind: 'poweroff', code: 0 }; this.cpu.stopped = true; this.wake?.(); }

  /**
   * Runs until the guest powers off (or stop()); resolves with how it ended. Rejects, with the
   * devices closed, when the host cannot go on (restored RAM that fails its check).
   */
  async run(gate?: RunGate): Promise<PowerOff> {
    const { cpu } = this;
    const harts = cpu.harts;
    try {
      while (!this.power) {
        while (this.holds > 0 && !this.power) await new Promise<void>(r => { this.released = r; this.wake = r; });
        if (this.power) break;
        gate?.enter();
        const start = performance.now();
        let allWaiting = false;
        while (!this.power && performance.now() - start < SLICE_MS) {
          allWaiting = true;
          this.clint.update();
          this.rtc.update();
          for (let i = 0; i < harts.length && !this.power; i++) {
            const h = harts[i];
            if (h.waiting && h.wakeable()) h.waiting = false;
            if (h.waiting) continue;
            allWaiting = false;
            h.takeInterrupt();
            if (harts.length > 1) for (const o of harts) cpu.views.i32[(o.hb + H.RESV_VALID) >> 2] = 0;
            cpu.step(i, QUANTUM);
          }
          if (allWaiting) break;
        }
        gate?.leave(!allWaiting);
        this.flushOutput();
        if (cpu.residency.failure) throw cpu.residency.failure; // the guest must not go on without its RAM
        if (this.power) break;
        if (allWaiting) await this.sleep(Math.min(this.clint.nextDeadlineMs(), this.rtc.nextDeadlineMs(), gate?.maxSleepMs ?? IDLE_WAKE_MS));
        else await new Promise(r => setImmediate(r));
      }
    } finally {
      this.flushOutput();
      this.closeDevices();
    }
    return this.power!;
  }

  /** Flushes and closes the disks (and whatever else devices hold on the host). */
  private closeDevices(): void {
    for (const t of this.virtio) t.close();
    this.cpu.residency.close(); // a snapshot still being paged in lets go of its file
  }

  private putOutput(b: number): void {
    if (this.outLen === this.out.length) {
      const grown = new Uint8Array(2 * this.out.length);
      grown.set(this.out);
      this.out = grown;
    }
    this.out[this.outLen++] = b;
  }

  private flushOutput(): void {
    if (!this.outLen) return;
    this.io.output(this.out.slice(0, this.outLen));
    this.outLen = 0;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise(resolve => {
      const done = (): void => { clearTimeout(this.wakeTimer); this.wake = undefined; resolve(); };
      this.wake = done;
      this.wakeTimer = setTimeout(done, Math.max(0, ms));
    });
  }
}
