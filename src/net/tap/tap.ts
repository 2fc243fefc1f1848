/**
 * The TAP backend: the NIC's frames go to a Linux TAP device, where the host's own bridges,
 * routes and firewalls take over (as QEMU's -netdev tap and Firecracker do). Needs root (or
 * CAP_NET_ADMIN) to create a device, or an existing persistent one (`ip tuntap add … user U`).
 *
 * The device is opened with IFF_VNET_HDR, so frames cross it with the virtio-net header and the
 * guest's offloads reach the host kernel unchanged: TSO super-frames from the guest are cut by
 * the kernel, and the kernel hands over large frames only when the guest accepts them
 * (TUNSETOFFLOAD follows the offloads the guest's driver negotiated).
 *
 * Reading: a poller thread (poller.ts) waits for frames; this thread reads them while the guest
 * has receive buffers, and otherwise keeps the one it holds and leaves the rest in the kernel's
 * queue (which drops beyond its txqueuelen, as a real NIC's ring would).
 */
import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { GasangError } from '../../util/errors.js';
import { hostCalls, type HostCalls } from '../../util/syscalls.js';
import { Gso, plainFrame, type FrameMeta, type NetBackend, type NicPort } from '../../devices/virtio/net/backend.js';
import { HDR_F_DATA_VALID, HDR_F_NEEDS_CSUM, MAX_FRAME, NetHdr } from '../../devices/virtio/net/layout.js';
import { PollState, type PollerData } from './poller.js';

// <linux/if_tun.h>
const TUNSETIFF = 0x400454ca;
const TUNSETOFFLOAD = 0x400454d0;
const TUNSETVNETHDRSZ = 0x400454d8;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
/** struct ifreq: char ifr_name[IFNAMSIZ = 16], then the union (short ifr_flags first). */
const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;
const EPERM = 1, ENOENT = 2, EBUSY = 16, EINVAL = 22;

export class TapError extends GasangError {}

export interface TapOptions {
  /** The device to attach to or create; empty: the kernel names a new one (tap0, tap1, …). */
  ifname?: string;
  log?: (line: string) => void;
}

export class TapBackend implements NetBackend {
  private port: NicPort | undefined;
  private readonly rx = new Uint8Array(NetHdr.SIZE + MAX_FRAME);
  private readonly tx = new Uint8Array(NetHdr.SIZE + MAX_FRAME);
  private readonly meta = plainFrame();
  private readonly state = new Int32Array(new SharedArrayBuffer(4));
  private readonly poller: Worker;
  private offloadBits = -1;
  /** Bytes in `rx` of a frame the guest had no room for (0: none): delivered first on the next drain. */
  private pending = 0;
  private closed = false;
  private readonly counters = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, txDropped: 0, rxErrors: 0 };
  private readonly log: (line: string) => void;

  private constructor(readonly ifname: string, private readonly fd: number, private readonly calls: HostCalls, log: (line: string) => void) {
    this.log = log;
    const data: PollerData & { tapPoller: true } = { fd, state: this.state, tapPoller: true };
    this.poller = new Worker(new URL('./poller.js', import.meta.url), { workerData: data });
    this.poller.on('message', () => this.drain());
    this.poller.on('error', err => this.log(`tap ${ifname}: poller stopped: ${err.message}`));
    this.poller.unref();
  }

  /** Opens (creating it if needed) the TAP device; a TapError says what stands in the way. */
  static open(opts: TapOptions = {}): TapBackend {
    const name = opts.ifname ?? '';
    if (Buffer.byteLength(name) >= IFNAMSIZ || /[\s/:]/.test(name)) throw new TapError('tap-name', `TAP device name ${JSON.stringify(name)}: at most 15 characters, no spaces, '/' or ':'`);
    const calls = hostCalls();
    if (typeof calls === 'string') throw new TapError('tap-unavailable', `TAP networking ${calls}`);
    let fd: number;
    try {
      fd = openSync('/dev/net/tun', constants.O_RDWR | constants.O_NONBLOCK);
    } catch (err) {
      throw new TapError('tap-open', `Cannot open /dev/net/tun: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const ifr = new Uint8Array(IFREQ_SIZE);
    ifr.set(Buffer.from(name));
    new DataView(ifr.buffer).setUint16(IFNAMSIZ, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, true);
    const hdrSize = new Uint8Array(4);
    new DataView(hdrSize.buffer).setInt32(0, NetHdr.SIZE, true);
    if (calls.ioctlBuf(fd, TUNSETIFF, ifr) < 0 || calls.ioctlBuf(fd, TUNSETVNETHDRSZ, hdrSize) < 0) {
      const e = calls.errno();
      closeSync(fd);
      const what = name ? `TAP device ${name}` : 'a TAP device';
      if (e === EPERM) throw new TapError('tap-permission', `Cannot attach ${what}: creating one needs root or CAP_NET_ADMIN (or create it first with ip tuntap add mode tap user $USER)`);
      if (e === EBUSY) throw new TapError('tap-busy', `Cannot attach ${what}: another process has it open`);
      if (e === EINVAL || e === ENOENT) throw new TapError('tap-invalid', `Cannot attach ${what}: a device of that name exists and is not a TAP device with virtio-net headers`);
      throw new TapError('tap-ioctl', `Cannot attach ${what}: errno ${e}`);
    }
    const ifname = Buffer.from(ifr.subarray(0, IFNAMSIZ)).toString('latin1').replace(/\0.*$/s, '');
    return new TapBackend(ifname, fd, calls, opts.log ?? (() => {}));
  }

  get description(): string { return `tap ${this.ifname}`; }

  attach(port: NicPort): void {
    this.port = port;
    port.onRxSpace = () => this.drain();
  }

  send(frame: Uint8Array, meta: FrameMeta): void {
    if (this.closed) return;
    const t = this.tx;
    t[NetHdr.FLAGS] = meta.needsCsum ? HDR_F_NEEDS_CSUM : 0;
    t[NetHdr.GSO_TYPE] = meta.gso;
    le16(t, NetHdr.HDR_LEN, meta.hdrLen);
    le16(t, NetHdr.GSO_SIZE, meta.gsoSize);
    le16(t, NetHdr.CSUM_START, meta.csumStart);
    le16(t, NetHdr.CSUM_OFFSET, meta.csumOffset);
    le16(t, NetHdr.NUM_BUFFERS, 0);
    t.set(frame, NetHdr.SIZE);
    try {
      writeSync(this.fd, t, 0, NetHdr.SIZE + frame.length);
      this.counters.txFrames++;
      this.counters.txBytes += frame.length;
    } catch {
      // EAGAIN (the kernel's queue is full), EIO (the device is down): the frame is lost, as on a wire.
      this.counters.txDropped++;
    }
  }

  stats(): Record<string, number> { return { ...this.counters }; }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.state, 0, PollState.STOP);
    Atomics.notify(this.state, 0);
    // The poller sees STOP within one poll period; the descriptor stays open until then.
    this.poller.once('exit', () => closeSync(this.fd));
  }

  /** Moves frames from the device to the guest while it has room. */
  private drain(): void {
    const port = this.port;
    if (this.closed || !port) return;
    this.applyOffloads(port);
    for (;;) {
      if (!port.linkUp) return; // onRxSpace calls again
      let n = this.pending;
      if (n === 0) {
        try {
          n = readSync(this.fd, this.rx, 0, this.rx.length, null);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
          this.counters.rxErrors++;
          this.log(`tap ${this.ifname}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; no more frames from it`);
          this.close();
          return;
        }
        if (n < NetHdr.SIZE + 14) continue;
        this.parseHeader();
      }
      const frame = this.rx.subarray(NetHdr.SIZE, n);
      if (!port.deliver(frame, this.meta)) {
        this.pending = n; // the rest waits in the kernel's queue
        return;
      }
      this.pending = 0;
      this.counters.rxFrames++;
      this.counters.rxBytes += frame.length;
    }
    Atomics.store(this.state, 0, PollState.POLLING);
    Atomics.notify(this.state, 0);
  }

  private parseHeader(): void {
    const h = this.rx, m = this.meta;
    m.needsCsum = (h[NetHdr.FLAGS]! & HDR_F_NEEDS_CSUM) !== 0;
    m.dataValid = (h[NetHdr.FLAGS]! & HDR_F_DATA_VALID) !== 0;
    m.gso = (h[NetHdr.GSO_TYPE]! & 0x7f) as Gso;
    m.hdrLen = h[NetHdr.HDR_LEN]! | (h[NetHdr.HDR_LEN + 1]! << 8);
    m.gsoSize = h[NetHdr.GSO_SIZE]! | (h[NetHdr.GSO_SIZE + 1]! << 8);
    m.csumStart = h[NetHdr.CSUM_START]! | (h[NetHdr.CSUM_START + 1]! << 8);
    m.csumOffset = h[NetHdr.CSUM_OFFSET]! | (h[NetHdr.CSUM_OFFSET + 1]! << 8);
  }

  /** Tells the kernel which large or unchecksummed frames the guest takes. */
  private applyOffloads(port: NicPort): void {
    const o = port.offloads;
    const bits = (o.csum ? TUN_F_CSUM : 0) | (o.csum && o.tso4 ? TUN_F_TSO4 : 0);
    if (bits === this.offloadBits) return;
    if (this.calls.ioctlInt(this.fd, TUNSETOFFLOAD, bits) < 0) this.log(`tap ${this.ifname}: TUNSETOFFLOAD failed (errno ${this.calls.errno()})`);
    else this.offloadBits = bits;
  }
}

function le16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}
