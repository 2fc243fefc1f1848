/** MAC addresses as users write them ("52:54:00:12:34:56") and as NICs hold them (6 bytes). */
import { InputError } from '../util/errors.js';

/** QEMU's first NIC address; NIC n adds n to the last byte, as QEMU does. */
export const DEFAULT_MAC = '52:54:00:12:34:56';

export function parseMac(where: string, s: string): Uint8Array {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(s);
  if (!m) throw new InputError('bad-mac', `${where}: ${JSON.stringify(s)} is not a MAC address (like ${DEFAULT_MAC})`);
  const mac = Uint8Array.from(m.slice(1, 7), h => parseInt(h, 16));
  if (mac[0]! & 1) throw new InputError('bad-mac', `${where}: ${s} is a multicast address; a NIC needs a unicast one`);
  return mac;
}

export const formatMac = (mac: Uint8Array): string => Array.from(mac, b => b.toString(16).padStart(2, '0')).join(':');

/** The default address of NIC `index` (0 = eth0). */
export function defaultMac(index: number): Uint8Array {
  const mac = parseMac('default', DEFAULT_MAC);
  mac[5] = (mac[5]! + index) & 0xff;
  return mac;
}
