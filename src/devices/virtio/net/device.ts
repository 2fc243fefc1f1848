/**
 * virtio-net (VIRTIO 1.x §5.1): one receiveq/transmitq pair, the MAC and link status in config
 * space, mergeable receive buffers, checksum offload both ways and TSO for IPv4 both ways, so bulk
 * TCP crosses the device in 64 KiB frames rather than one exit per 1500 bytes.
 *
 * The device is the NicPort of a NetBackend (backend.ts): frames the guest transmits go to
 * backend.send() with their offload metadata; the backend hands frames for the guest to deliver(),
 * which writes them into the guest's receive buffers at once or says there is no room (the backend
 * keeps them and waits for onRxSpace). Nothing is queued here, so nothing grows here.
 */
import { DeviceId, type FeatureWords, type VirtioContext, type VirtioDevice } from '../device.js';
import { DescChain } from '../queue.js';
import { Gso, plainFrame, type FrameMeta, type GuestOffloads, type NetBackend, type NicPort } from './backend.js';
import { GSO_ECN, HDR_F_DATA_VALID, HDR_F_NEEDS_CSUM, MAX_FRAME, NET_S_LINK_UP, NetConfig, NetFeature, NetHdr } from './layout.js';

export const NET_QUEUE_SIZE = 256;
const enum Q { RX = 0, TX = 1 }
const ETH_HEADER = 14;
/** Without mergeable buffers or TSO, Linux posts buffers for one standard frame. */
const PLAIN_FRAME = 1514;

export interface VirtioNetOptions {
  /** The MAC address the guest reads from config space (6 bytes). */
  mac: Uint8Array;
  backend: NetBackend;
}

export interface NetCounters {
  rxFrames: number;
  rxBytes: number;
  /** Frames for the guest dropped: larger than its buffers or than the offloads it accepted allow. */
  rxDropped: number;
  txFrames: number;
  txBytes: number;
  /** Frames from the guest dropped as malformed (too short or long, bad header, offload not negotiated). */
  txDropped: number;
}

export interface NetState { mac: number[]; link: boolean }

export class VirtioNet implements VirtioDevice, NicPort {
  readonly name = 'virtio-net';
  readonly deviceId = DeviceId.NET;
  readonly features: FeatureWords = {
    lo: NetFeature.CSUM | NetFeature.GUEST_CSUM | NetFeature.MAC | NetFeature.GUEST_TSO4 | NetFeature.HOST_TSO4
      | NetFeature.MRG_RXBUF | NetFeature.STATUS,
    hi: 0,
  };
  readonly queueMaxSizes = [NET_QUEUE_SIZE, NET_QUEUE_SIZE];
  readonly mac: Uint8Array;
  readonly backend: NetBackend;
  readonly counters: NetCounters = { rxFrames: 0, rxBytes: 0, rxDropped: 0, txFrames: 0, txBytes: 0, txDropped: 0 };
  readonly offloads: GuestOffloads = { csum: false, tso4: false, tso6: false, maxFrame: PLAIN_FRAME };
  onRxSpace: (() => void) | undefined;
  private link = true;
  private ctx: VirtioContext | undefined;
  private mergeable = false;
  private hostCsum = false;
  private hostTso4 = false;
  /** deliver() found no room: tell the backend when the driver posts buffers. */
  private rxWaiting = false;
  private readonly txChain = new DescChain(NET_QUEUE_SIZE);
  private readonly rxFirst = new DescChain(NET_QUEUE_SIZE);
  private readonly rxNext = new DescChain(NET_QUEUE_SIZE);
  /** Heads and lengths of the receive chains one frame is being written into. */
  private readonly rxHeads = new Uint16Array(NET_QUEUE_SIZE);
  private readonly rxLens = new Uint32Array(NET_QUEUE_SIZE);
  private readonly txHdr = new Uint8Array(NetHdr.SIZE);
  private readonly txFrame = new Uint8Array(MAX_FRAME);
  private readonly txMeta = plainFrame();
  private readonly rxHdr = new Uint8Array(NetHdr.SIZE);
  private readonly config = new Uint8Array(NetConfig.SIZE);

  constructor(opts: VirtioNetOptions) {
    if (opts.mac.length !== 6) throw new RangeError('a MAC address has 6 bytes');
    this.mac = Uint8Array.from(opts.mac);
    this.backend = opts.backend;
    this.config.set(this.mac, NetConfig.MAC);
    this.writeStatus();
    opts.backend.attach(this);
  }

  get linkUp(): boolean { return this.link && this.ctx !== undefined; }

  /** Host side: plugs or unplugs the cable; the guest sees the status change (carrier). */
  setLink(up: boolean): void {
    if (up === this.link) return;
    this.link = up;
    this.writeStatus();
    this.ctx?.signalConfig();
    if (up && this.rxWaiting) this.rxSpace();
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    if (!(offset >= 0 && offset + size <= NetConfig.SIZE)) return 0;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.config[offset + i]!;
    return v;
  }

  writeConfig(): void {
    // mac is writable only in legacy devices (§5.1.4.2); status is read-only.
  }

  activate(ctx: VirtioContext): void {
    const f = ctx.features.lo;
    this.ctx = ctx;
    this.mergeable = (f & NetFeature.MRG_RXBUF) !== 0;
    this.hostCsum = (f & NetFeature.CSUM) !== 0;
    this.hostTso4 = this.hostCsum && (f & NetFeature.HOST_TSO4) !== 0;
    const o = this.offloads;
    o.csum = (f & NetFeature.GUEST_CSUM) !== 0;
    o.tso4 = o.csum && (f & NetFeature.GUEST_TSO4) !== 0;
    o.tso6 = false;
    o.maxFrame = this.mergeable || o.tso4 ? MAX_FRAME : PLAIN_FRAME;
    this.transmit();
    this.rxSpace();
  }

  notify(queue: number): void {
    if (queue === Q.TX) this.transmit();
    else if (this.rxWaiting) this.rxSpace();
  }

  reset(): void {
    this.ctx = undefined;
    this.rxWaiting = false;
  }

  close(): void {
    this.reset();
    this.backend.close();
  }

  save(): NetState { return { mac: Array.from(this.mac), link: this.link }; }

  restore(state: unknown): void {
    const s = state as Partial<NetState> | null;
    this.link = s?.link !== false;
    this.writeStatus();
  }

  /** Writes a frame for the guest into its receive buffers; false when they cannot hold it now. */
  deliver(frame: Uint8Array, meta: FrameMeta): boolean {
    const ctx = this.ctx;
    const q = ctx?.queues[Q.RX];
    if (!ctx || !q?.ready || !this.link) return this.noRoom();
    const o = this.offloads;
    if (frame.length < ETH_HEADER || frame.length > o.maxFrame || (!o.csum && (meta.needsCsum || meta.dataValid))
      || (meta.gso !== Gso.NONE && !(meta.gso === Gso.TCPV4 && o.tso4))) {
      this.counters.rxDropped++;
      return true;
    }
    const need = NetHdr.SIZE + frame.length;
    if (!q.pop(this.rxFirst)) return this.noRoom();
    let chains = 1;
    let written = this.rxFirst.write(ctx.mem, NetHdr.SIZE, frame) + NetHdr.SIZE;
    this.rxHeads[0] = this.rxFirst.head;
    this.rxLens[0] = Math.min(written, this.rxFirst.writableBytes);
    if (this.rxFirst.writableBytes < NetHdr.SIZE) written = 0; // a buffer too small for the header holds nothing
    if (written < need && !this.mergeable) {
      // One buffer per frame, and this one is too small: the frame is lost, the buffer goes back used and empty.
      q.push(this.rxFirst.head, 0);
      ctx.signalUsed(q);
      this.counters.rxDropped++;
      return true;
    }
    while (written < need && written > 0) {
      if (chains === NET_QUEUE_SIZE || !q.pop(this.rxNext)) {
        for (let i = 0; i < chains; i++) q.undoPop();
        return this.noRoom();
      }
      const n = this.rxNext.write(ctx.mem, 0, frame.subarray(written - NetHdr.SIZE));
      this.rxHeads[chains] = this.rxNext.head;
      this.rxLens[chains++] = n;
      written += n;
      if (n === 0) break; // a buffer with no writable bytes: the driver broke the rules
    }
    if (written < need) {
      for (let i = 0; i < chains; i++) q.push(this.rxHeads[i]!, 0);
      ctx.signalUsed(q);
      ctx.fail(`receive buffers without room for the virtio-net header or data (${chains} chains)`);
      this.counters.rxDropped++;
      return true;
    }
    this.writeHeader(meta, chains);
    this.rxFirst.write(ctx.mem, 0, this.rxHdr);
    for (let i = 0; i < chains; i++) q.push(this.rxHeads[i]!, this.rxLens[i]!);
    ctx.signalUsed(q);
    this.counters.rxFrames++;
    this.counters.rxBytes += frame.length;
    return true;
  }

  private noRoom(): false {
    this.rxWaiting = true;
    this.ctx?.queues[Q.RX]?.notifyOnNext();
    return false;
  }

  private rxSpace(): void {
    this.rxWaiting = false;
    if (this.linkUp) this.onRxSpace?.();
  }

  private writeHeader(meta: FrameMeta, buffers: number): void {
    const h = this.rxHdr;
    h[NetHdr.FLAGS] = (meta.needsCsum ? HDR_F_NEEDS_CSUM : 0) | (meta.dataValid ? HDR_F_DATA_VALID : 0);
    h[NetHdr.GSO_TYPE] = meta.gso;
    le16(h, NetHdr.HDR_LEN, meta.gso !== Gso.NONE ? meta.hdrLen : 0);
    le16(h, NetHdr.GSO_SIZE, meta.gso !== Gso.NONE ? meta.gsoSize : 0);
    le16(h, NetHdr.CSUM_START, meta.needsCsum ? meta.csumStart : 0);
    le16(h, NetHdr.CSUM_OFFSET, meta.needsCsum ? meta.csumOffset : 0);
    le16(h, NetHdr.NUM_BUFFERS, buffers);
  }

  /** Sends every frame the guest has queued to the backend. */
  private transmit(): void {
    const ctx = this.ctx;
    const q = ctx?.queues[Q.TX];
    if (!ctx || !q?.ready) return;
    const chain = this.txChain;
    let served = 0;
    while (q.pop(chain)) {
      const len = chain.readableBytes - NetHdr.SIZE;
      if (len >= ETH_HEADER && len <= MAX_FRAME) {
        chain.read(ctx.mem, 0, this.txHdr);
        const frame = this.txFrame.subarray(0, len);
        chain.read(ctx.mem, NetHdr.SIZE, frame);
        if (this.parseHeader(len)) {
          this.counters.txFrames++;
          this.counters.txBytes += len;
          if (this.link) this.backend.send(frame, this.txMeta);
        } else this.counters.txDropped++;
      } else this.counters.txDropped++;
      q.push(chain.head, 0);
      served++;
    }
    if (served) ctx.signalUsed(q);
  }

  /** Fills txMeta from txHdr; false when the header asks for what was not negotiated or points outside the frame. */
  private parseHeader(len: number): boolean {
    const h = this.txHdr, m = this.txMeta;
    const flags = h[NetHdr.FLAGS]!;
    const gso = h[NetHdr.GSO_TYPE]! & ~GSO_ECN;
    m.needsCsum = (flags & HDR_F_NEEDS_CSUM) !== 0;
    m.dataValid = false;
    m.csumStart = h[NetHdr.CSUM_START]! | (h[NetHdr.CSUM_START + 1]! << 8);
    m.csumOffset = h[NetHdr.CSUM_OFFSET]! | (h[NetHdr.CSUM_OFFSET + 1]! << 8);
    m.hdrLen = h[NetHdr.HDR_LEN]! | (h[NetHdr.HDR_LEN + 1]! << 8);
    m.gsoSize = h[NetHdr.GSO_SIZE]! | (h[NetHdr.GSO_SIZE + 1]! << 8);
    if (m.needsCsum && (!this.hostCsum || m.csumStart + m.csumOffset + 2 > len)) return false;
    if (gso === Gso.NONE) { m.gso = Gso.NONE; return true; }
    if (gso !== Gso.TCPV4 || !this.hostTso4 || m.gsoSize === 0 || (h[NetHdr.GSO_TYPE]! & GSO_ECN) !== 0) return false;
    m.gso = Gso.TCPV4;
    return true;
  }

  private writeStatus(): void {
    le16(this.config, NetConfig.STATUS, this.link ? NET_S_LINK_UP : 0);
  }
}

function le16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}
