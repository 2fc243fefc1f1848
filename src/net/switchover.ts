/**
 * The backend of a NIC that arrives by live migration. Its host side (forwarded ports, a TAP
 * device) is still held by the source until the guest runs here, so it opens at switchover: the
 * open is retried while the source lets go. Frames the guest sends before are dropped and counted,
 * as on a link that blinked. Once open, the NIC announces itself (RARP from its MAC, as QEMU's
 * announce does) so switches learn where it is now.
 */
import { plainFrame, type FrameMeta, type NetBackend, type NicPort } from '../devices/virtio/net/backend.js';

/** How long the open is retried (ms): the source closes its side right after it sees the target run. */
const SWITCHOVER_WAIT_MS = 5_000;
const RETRY_MS = 20;
/** Announcements after the open, as QEMU's default announce-initial/step (ms from the open). */
const ANNOUNCE_AT_MS = [0, 50, 200, 450];

export class SwitchoverBackend implements NetBackend {
  private backend: NetBackend | undefined;
  private port: NicPort | undefined;
  private dropped = 0;
  private closed = false;

  constructor(readonly description: string, private readonly open: () => Promise<NetBackend>, private readonly announces: boolean) {}

  attach(port: NicPort): void { this.port = port; }

  send(frame: Uint8Array, meta: FrameMeta): void {
    if (this.backend) this.backend.send(frame, meta);
    else this.dropped++;
  }

  stats(): Record<string, number> {
    return { ...this.backend?.stats(), switchoverDrops: this.dropped };
  }

  close(): void {
    this.closed = true;
    this.backend?.close();
  }

  /** Opens the host side, retrying until the source has let go; resolves with it (undefined if closed meanwhile), rejects with the last error after SWITCHOVER_WAIT_MS. */
  async connect(): Promise<NetBackend | undefined> {
    const deadline = performance.now() + SWITCHOVER_WAIT_MS;
    for (;;) {
      try {
        const b = await this.open();
        if (this.closed) { b.close(); return undefined; }
        if (this.port) b.attach(this.port);
        this.backend = b;
        break;
      } catch (err) {
        if (this.closed || performance.now() > deadline) throw err;
        await new Promise(r => setTimeout(r, RETRY_MS));
      }
    }
    if (this.announces && this.port) {
      const frame = rarpAnnounce(this.port.mac), meta = plainFrame();
      for (const at of ANNOUNCE_AT_MS) setTimeout(() => { if (!this.closed) this.backend?.send(frame, meta); }, at).unref();
    }
    return this.backend;
  }
}

/** A RARP "request reverse" from `mac` to everyone (RFC 903), padded to Ethernet's 60 bytes: what QEMU sends after a migration. */
export function rarpAnnounce(mac: Uint8Array): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f.set(mac, 6);
  f[12] = 0x80; f[13] = 0x35; // ethertype RARP
  f[15] = 1; // hardware type Ethernet
  f[16] = 0x08; f[17] = 0x00; // protocol IPv4
  f[18] = 6; f[19] = 4; // address lengths
  f[21] = 3; // request reverse
  f.set(mac, 22); // sender hardware address
  f.set(mac, 32); // target hardware address
  return f;
}
