// The board's power button (src/machine/power-button.ts) on both guest kernels: the guest sees a
// virtio-input device with KEY_POWER, and a press makes its init power off cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUNDLED, DEBIAN, Guest, READY, debianAvailable } from './guest.js';
import { KEY_POWER } from '../../src/devices/virtio/input/device.js';

async function pressAndPowerOff(g: Guest): Promise<void> {
  await g.waitFor(READY);
  const devices = await g.run('cat /proc/bus/input/devices');
  assert.match(devices, /N: Name="gasang power button"/);
  assert.match(devices, /I: Bus=0006 Vendor=1af4 Product=0001 Version=0001/, 'BUS_VIRTUAL, the ids the device reports');
  assert.match(devices, /H: Handlers=.*\bevent\d/, 'evdev made it an event device');
  // B: KEY= is the key bitmap as hex words, most significant first: KEY_POWER (116) is bit 52 of the second 64-bit word.
  assert.match(devices, new RegExp(`B: KEY=${(1n << BigInt(KEY_POWER - 64)).toString(16)} 0\\b`));
  await g.run('echo kept > /tmp/before-press');
  g.vm.powerButton!.press();
  assert.deepEqual(await g.ended, { kind: 'poweroff', code: 0 });
  assert.equal(g.vm.powerButton!.device.delivered, 4, 'press and release, each with its EV_SYN');
}

test('the bundled guest sees the power button and powers off when it is pressed', { timeout: 300_000 }, async () => {
  await pressAndPowerOff(await Guest.boot({ ...BUNDLED, powerButton: true }));
});

test("Debian's kernel loads virtio-input for the power button and powers off when it is pressed", { timeout: 600_000, skip: !debianAvailable() && !process.env.CI && 'run scripts/fetch-debian-guest.sh first' }, async () => {
  await pressAndPowerOff(await Guest.boot({ ...DEBIAN, powerButton: true }));
});
