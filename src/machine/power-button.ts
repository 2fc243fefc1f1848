/**
 * The board's power button: the host's graceful "please power off" (`gasang vm stop`), the request
 * a stock guest acts on before the host forces the machine off.
 *
 * It is a virtio-input device that has one key, KEY_POWER — what a power key is to Linux on any
 * board: an input device whose press user space acts on (systemd-logind or acpid; on our busybox
 * guests, guest/init.sh, which reads /dev/input/eventN and powers off cleanly). virtio-input and
 * not gpio-keys (QEMU's arm `virt` board wires its button to a PL061 GPIO): Debian's riscv64
 * kernel has CONFIG_KEYBOARD_GPIO unset, so gpio-keys does not exist there, while virtio-input
 * is a module of it (and built into the bundled kernel). A guest without a listener ignores the
 * press, and the host forces the stop after its timeout.
 *
 * The kernel command line carries POWER_BOOTARG so that init knows to listen (and, on Debian's
 * kernel, to load virtio_mmio, virtio_input and evdev first).
 */
import { Ev, KEY_POWER, VirtioInput } from '../devices/virtio/input/device.js';

/** On the kernel command line when the board has the button. */
export const POWER_BOOTARG = 'gasang.power=1';
/** The input device's name, as the guest sees it in /sys/class/input/eventN/device/name. */
export const POWER_BUTTON_NAME = 'gasang power button';

export class PowerButton {
  /** The virtio device the machine maps on a slot. */
  readonly device = new VirtioInput({
    name: POWER_BUTTON_NAME,
    serial: 'power0',
    events: new Map([[Ev.KEY, [KEY_POWER]]]),
    ids: { vendor: 0x1af4, product: 0x0001, version: 1 },
  });
  /** Presses so far. */
  presses = 0;

  /** Presses and releases the key (two input updates); the guest sees them once its driver posts buffers. */
  press(): void {
    this.presses++;
    this.device.send([Ev.KEY, KEY_POWER, 1]);
    this.device.send([Ev.KEY, KEY_POWER, 0]);
  }
}

/** The command line with POWER_BOOTARG added. */
export function withPowerBootarg(append: string): string {
  return append === '' ? POWER_BOOTARG : `${append} ${POWER_BOOTARG}`;
}
