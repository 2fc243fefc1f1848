/**
 * The device tree of the board, modelled on QEMU's `virt` machine (hw/riscv/virt.c; compare with
 * `qemu-system-riscv64 -M virt,dumpdtb=virt.dtb` and `dtc -I dtb -O dts virt.dtb`), as stock Linux
 * (6.1, 6.12) and OpenSBI's generic platform expect it.
 */
import { GasangError } from '../util/errors.js';
import { buildFdt, fdtNode, fdtValue as v, type FdtNode } from './fdt.js';
import {
  CLINT_BASE, CLINT_SIZE, PLIC_BASE, PLIC_NDEV, PLIC_SIZE, RAM_BASE, RTC_BASE, RTC_IRQ, RTC_SIZE,
  TEST_BASE, TEST_SIZE, TIMEBASE_HZ, UART0_BASE, UART0_CLOCK_HZ, UART0_IRQ, UART0_SIZE, VIRTIO_SIZE,
} from './memory-map.js';
import { Mip } from './irq.js';

/** Multi-letter extensions in the canonical order (Zi* before Zb*), as Linux and OpenSBI parse riscv,isa. */
export const DEFAULT_ISA = 'rv64imafdc_zicond_zicsr_zifencei_zba_zbb_zbs';
/** What Linux 6.x reads instead of riscv,isa when present (its names: Documentation/devicetree/bindings/riscv/extensions.yaml). */
export const DEFAULT_ISA_EXTENSIONS: readonly string[] = ['i', 'm', 'a', 'f', 'd', 'c', 'zicsr', 'zifencei', 'zicntr', 'zicond', 'zba', 'zbb', 'zbs'];
export const DEFAULT_MMU_TYPE = 'riscv,sv48';
export const STDOUT_PATH = `/soc/serial@${UART0_BASE.toString(16)}`;

export interface VirtFdtSpec {
  memoryBytes: number;
  harts: number;
  /** Kernel command line (/chosen/bootargs); omitted when empty. */
  bootargs: string;
  /** Guest physical range of the initrd (/chosen/linux,initrd-start, -end). */
  initrd?: { start: number; end: number };
  /** riscv,isa string (default DEFAULT_ISA). */
  isa?: string;
  /** riscv,isa-extensions (default DEFAULT_ISA_EXTENSIONS, or derived from `isa` when that is given). */
  isaExtensions?: readonly string[];
  /** mmu-type of every cpu (default "riscv,sv48"). */
  mmuType?: string;
  /** virtio-mmio transports to declare. */
  virtio?: { base: number; irq: number }[];
  /** /chosen/rng-seed (Linux seeds its RNG with it); default 32 random bytes, pass an empty array to omit. */
  rngSeed?: Uint8Array;
}

/** Phandles, fixed so the tree is reproducible. */
export const virtPhandles = (harts: number) => ({
  intc: (hart: number): number => 1 + hart,
  cpu: (hart: number): number => 1 + harts + hart,
  plic: 1 + 2 * harts,
  test: 2 + 2 * harts,
});

/** Extensions named by an ISA string: "rv64gc_zba" → i m a f d zicsr zifencei c zba. */
export function isaExtensionsOf(isa: string): string[] {
  const m = /^rv(32|64)([a-z]*)((?:_[a-z0-9]+)*)$/.exec(isa.toLowerCase());
  if (!m) throw new GasangError('fdt-isa', `Invalid ISA string ${JSON.stringify(isa)}`);
  const out: string[] = [];
  const add = (e: string): void => {
    if (!out.includes(e)) out.push(e);
  };
  for (const ch of m[2]!) {
    if (ch === 'g') ['i', 'm', 'a', 'f', 'd', 'zicsr', 'zifencei'].forEach(add);
    else add(ch);
  }
  for (const multi of m[3]!.split('_').filter(Boolean)) add(multi);
  return out;
}

const hex = (n: number): string => n.toString(16);
const reg = (base: number, size: number): Uint8Array => v.u64(base, size);

/** Builds the DTB for `spec`. */
export function buildVirtFdt(spec: VirtFdtSpec): Uint8Array {
  return buildFdt(virtFdtTree(spec), { bootCpuidPhys: 0 });
}

/** The tree buildVirtFdt serialises (for callers that want to add nodes). */
export function virtFdtTree(spec: VirtFdtSpec): FdtNode {
  const { harts } = spec;
  if (!(Number.isInteger(harts) && harts >= 1 && harts <= 512)) throw new GasangError('fdt-harts', `Invalid hart count ${harts}`);
  if (!(Number.isSafeInteger(spec.memoryBytes) && spec.memoryBytes > 0)) throw new GasangError('fdt-memory', `Invalid memory size ${spec.memoryBytes}`);
  const ph = virtPhandles(harts);
  const isa = spec.isa ?? DEFAULT_ISA;
  const extensions = spec.isaExtensions ?? (spec.isa === undefined ? DEFAULT_ISA_EXTENSIONS : isaExtensionsOf(isa));
  const isaBase = `${isa.slice(0, 4).toLowerCase()}i`;
  const hartList = Array.from({ length: harts }, (_, h) => h);

  const chosen: Record<string, Uint8Array> = {};
  if (spec.bootargs !== '') chosen['bootargs'] = v.string(spec.bootargs);
  chosen['stdout-path'] = v.string(STDOUT_PATH);
  if (spec.initrd) {
    chosen['linux,initrd-start'] = v.u64(spec.initrd.start);
    chosen['linux,initrd-end'] = v.u64(spec.initrd.end);
  }
  const seed = spec.rngSeed ?? crypto.getRandomValues(new Uint8Array(32));
  if (seed.length > 0) chosen['rng-seed'] = seed;

  const cpus = fdtNode(
    'cpus',
    { '#address-cells': v.u32(1), '#size-cells': v.u32(0), 'timebase-frequency': v.u32(TIMEBASE_HZ) },
    [
      ...hartList.map((h) =>
        fdtNode(
          `cpu@${hex(h)}`,
          {
            device_type: v.string('cpu'),
            reg: v.u32(h),
            status: v.string('okay'),
            compatible: v.string('riscv'),
            'riscv,isa': v.string(isa),
            'riscv,isa-base': v.string(isaBase),
            'riscv,isa-extensions': v.strings(...extensions),
            'mmu-type': v.string(spec.mmuType ?? DEFAULT_MMU_TYPE),
            phandle: v.u32(ph.cpu(h)),
          },
          [
            fdtNode('interrupt-controller', {
              '#interrupt-cells': v.u32(1),
              'interrupt-controller': v.empty(),
              compatible: v.string('riscv,cpu-intc'),
              phandle: v.u32(ph.intc(h)),
            }),
          ],
        ),
      ),
      fdtNode('cpu-map', {}, [
        fdtNode('cluster0', {}, hartList.map((h) => fdtNode(`core${h}`, { cpu: v.u32(ph.cpu(h)) }))),
      ]),
    ],
  );

  const devIrq = (irq: number): Record<string, Uint8Array> => ({
    interrupts: v.u32(irq),
    'interrupt-parent': v.u32(ph.plic),
  });

  const soc = fdtNode(
    'soc',
    { '#address-cells': v.u32(2), '#size-cells': v.u32(2), compatible: v.string('simple-bus'), ranges: v.empty() },
    [
      fdtNode(`rtc@${hex(RTC_BASE)}`, {
        ...devIrq(RTC_IRQ),
        reg: reg(RTC_BASE, RTC_SIZE),
        compatible: v.string('google,goldfish-rtc'),
      }),
      fdtNode(`serial@${hex(UART0_BASE)}`, {
        ...devIrq(UART0_IRQ),
        'clock-frequency': v.u32(UART0_CLOCK_HZ),
        reg: reg(UART0_BASE, UART0_SIZE),
        compatible: v.string('ns16550a'),
      }),
      fdtNode(`test@${hex(TEST_BASE)}`, {
        phandle: v.u32(ph.test),
        reg: reg(TEST_BASE, TEST_SIZE),
        compatible: v.strings('sifive,test1', 'sifive,test0', 'syscon'),
      }),
      ...(spec.virtio ?? []).map((d) =>
        fdtNode(`virtio_mmio@${hex(d.base)}`, {
          ...devIrq(d.irq),
          reg: reg(d.base, VIRTIO_SIZE),
          compatible: v.string('virtio,mmio'),
        }),
      ),
      fdtNode(`plic@${hex(PLIC_BASE)}`, {
        phandle: v.u32(ph.plic),
        'riscv,ndev': v.u32(PLIC_NDEV),
        reg: reg(PLIC_BASE, PLIC_SIZE),
        'interrupts-extended': v.u32(...hartList.flatMap((h) => [ph.intc(h), Mip.MEIP, ph.intc(h), Mip.SEIP])),
        'interrupt-controller': v.empty(),
        compatible: v.strings('sifive,plic-1.0.0', 'riscv,plic0'),
        '#address-cells': v.u32(0),
        '#interrupt-cells': v.u32(1),
      }),
      fdtNode(`clint@${hex(CLINT_BASE)}`, {
        'interrupts-extended': v.u32(...hartList.flatMap((h) => [ph.intc(h), Mip.MSIP, ph.intc(h), Mip.MTIP])),
        reg: reg(CLINT_BASE, CLINT_SIZE),
        compatible: v.strings('sifive,clint0', 'riscv,clint0'),
      }),
    ],
  );

  return fdtNode(
    '',
    {
      '#address-cells': v.u32(2),
      '#size-cells': v.u32(2),
      compatible: v.string('riscv-virtio'),
      model: v.string('riscv-virtio,qemu'),
    },
    [
      fdtNode('chosen', chosen),
      // As QEMU: syscon-poweroff/-reboot at the root, pointing at the test device by phandle.
      fdtNode('poweroff', {
        value: v.u32(0x5555),
        offset: v.u32(0),
        regmap: v.u32(ph.test),
        compatible: v.string('syscon-poweroff'),
      }),
      fdtNode('reboot', {
        value: v.u32(0x7777),
        offset: v.u32(0),
        regmap: v.u32(ph.test),
        compatible: v.string('syscon-reboot'),
      }),
      fdtNode(`memory@${hex(RAM_BASE)}`, { device_type: v.string('memory'), reg: reg(RAM_BASE, spec.memoryBytes) }),
      cpus,
      soc,
    ],
  );
}
