/**
 * A `virt` board's whole state for snapshots and migration: every hart's architectural bytes
 * (registers, CSRs, LR reservation — the shared memory below the TLB), the harts' host side, the
 * CLINT, PLIC, UART and RTC, every virtio transport with its queues and device, and RAM.
 *
 * Taken between slices of the run loop (any host callback is between slices), so no instruction
 * is half done. Restored into a freshly built board of the same shape: the TLBs and the JIT start
 * empty and are rebuilt as the guest runs, and each device re-validates its saved state (queue
 * addresses against RAM, disk sizes) before the guest can use it.
 */
import { HART_STATE_BYTES } from '../cpu/layout.js';
import type { HartHostState } from '../cpu/hart.js';
import type { ClintState } from './clint.js';
import type { PlicState } from './plic.js';
import type { Uart16550State } from './uart16550.js';
import type { GoldfishRtcState } from './rtc-goldfish.js';
import type { VirtioMmioState } from '../devices/virtio/mmio.js';
import { GasangError } from '../util/errors.js';
import type { VirtMachine } from './virt.js';

/** What the state must be restored into: checked before anything is applied. */
export interface VirtShape {
  memoryBytes: number;
  harts: number;
  /** Virtio devices by slot (their transports' names). */
  devices: string[];
}

/** Everything but RAM and the harts' bytes, as plain JSON. */
export interface VirtState {
  shape: VirtShape;
  harts: HartHostState[];
  clint: ClintState;
  plic: PlicState;
  uart: Uart16550State;
  rtc: GoldfishRtcState;
  virtio: VirtioMmioState[];
  /** The device tree the guest booted with (base64), for inspection. */
  fdt: string;
}

export function shapeOf(m: VirtMachine): VirtShape {
  return { memoryBytes: m.cpu.ram.length, harts: m.cpu.harts.length, devices: m.virtio.map(t => t.name) };
}

/** The board's JSON state; RAM and hart bytes stay in m.cpu's memory (read them with hartBytes and m.cpu.ram while the board is stopped). */
export function saveVirt(m: VirtMachine): VirtState {
  return {
    shape: shapeOf(m),
    harts: m.cpu.harts.map(h => h.saveHost()),
    clint: m.clint.save(),
    plic: m.plic.save(),
    uart: m.uart.save(),
    rtc: m.rtc.save(),
    virtio: m.virtio.map(t => t.save()),
    fdt: Buffer.from(m.fdt).toString('base64'),
  };
}

/** The harts' architectural state, hart 0 first: a view of the shared memory (copy it if the board runs on). */
export function hartBytes(m: VirtMachine, hart: number): Uint8Array {
  const h = m.cpu.harts[hart]!;
  return new Uint8Array(m.cpu.memory.buffer, h.hb, HART_STATE_BYTES);
}

/**
 * Applies `state` and the harts' bytes to a freshly built board whose RAM already holds the
 * snapshot's. Throws a GasangError when the shapes differ or a device refuses its state.
 */
export function restoreVirt(m: VirtMachine, state: VirtState, harts: readonly Uint8Array[]): void {
  const want = shapeOf(m), got = state.shape;
  if (got.memoryBytes !== want.memoryBytes || got.harts !== want.harts || got.devices.join() !== want.devices.join()) {
    throw new GasangError('virt-restore', `The saved board (${describe(got)}) is not this one (${describe(want)})`);
  }
  if (harts.length !== want.harts || harts.some(b => b.length !== HART_STATE_BYTES) || state.harts.length !== want.harts || state.virtio.length !== want.devices.length) {
    throw new GasangError('virt-restore', 'The saved hart or device state is incomplete');
  }
  try {
    m.cpu.harts.forEach((h, i) => {
      new Uint8Array(m.cpu.memory.buffer, h.hb, HART_STATE_BYTES).set(harts[i]!);
      h.restoreHost(state.harts[i]!);
    });
    // Interrupt lines last: the CLINT and PLIC report their levels to the restored harts.
    m.uart.restore(state.uart);
    m.rtc.restore(state.rtc);
    m.virtio.forEach((t, i) => t.restore(state.virtio[i]!));
    m.plic.restore(state.plic);
    m.clint.restore(state.clint);
    m.fdt = new Uint8Array(Buffer.from(state.fdt, 'base64'));
  } catch (err) {
    if (err instanceof GasangError) throw err;
    throw new GasangError('virt-restore', `The saved state does not fit this board: ${(err as Error).message}`, { cause: err });
  }
}

const describe = (s: VirtShape): string => `${s.memoryBytes / 1048576} MiB, ${s.harts} hart${s.harts === 1 ? '' : 's'}, devices ${s.devices.join(', ') || 'none'}`;
