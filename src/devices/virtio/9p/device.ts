/**
 * virtio-9p: a shared host directory (device id 9, the "9P transport"; Linux's net/9p/trans_virtio.c
 * is the driver and include/uapi/linux/virtio_9p.h the layout).
 *
 * One request queue. Each chain's device-readable part is a T-message and its device-writable part
 * receives the R-message; the used length is the reply's length. Requests are served synchronously
 * when the guest kicks (NinePServer does the host I/O with sync calls on the VM thread).
 * The T-message is always copied out of guest RAM first, so the guest cannot change it while it is
 * checked and used. The reply goes straight into guest RAM when the writable part is one buffer
 * (Linux's ordinary requests), through a bounce buffer when it is several (its zero-copy reads: an
 * 11-byte header buffer, then the pages of the destination).
 */
import { DeviceId, type FeatureWords, type VirtioContext, type VirtioDevice } from '../device.js';
import { DescChain } from '../queue.js';
import { ShareError } from './host-root.js';
import { DEFAULT_MSIZE, NinePServer, type NinePSession } from './server.js';

/** Device feature bits (virtio_9p.h). */
export const NinePFeature = {
  /** The config space holds the mount tag. */
  MOUNT_TAG: 1 << 0,
} as const;

/** struct virtio_9p_config: le16 tag_len, then tag_len bytes of tag (not NUL-terminated). */
export const enum NinePConfig {
  TAG_LEN = 0,
  TAG = 2,
}

/** Linux's trans_virtio uses 128-entry rings (VIRTQUEUE_NUM), and QEMU offers the same. */
export const NINEP_QUEUE_SIZE = 128;
/** Longest mount tag (QEMU's limit; the tag is the device name in `mount -t 9p TAG /mnt`). */
export const MAX_TAG_BYTES = 255;

export interface VirtioNinePOptions {
  /** Host directory to share. */
  root: string;
  /** Mount tag the guest names the share by. */
  tag: string;
  readOnly?: boolean;
  /** Largest 9P message (default 512 KiB, the most Linux's virtio transport uses). */
  msize?: number;
  /** Server bugs (unexpected exceptions, answered EIO) are reported here. */
  log?: (line: string) => void;
}

export class VirtioNineP implements VirtioDevice {
  readonly name = 'virtio-9p';
  readonly deviceId = DeviceId.NINEP;
  readonly features: FeatureWords = { lo: NinePFeature.MOUNT_TAG, hi: 0 };
  readonly queueMaxSizes = [NINEP_QUEUE_SIZE];
  readonly server: NinePServer;
  /** Requests served, and bytes of T- and R-messages moved. */
  readonly stats = { requests: 0, requestBytes: 0, replyBytes: 0 };
  private readonly config: Uint8Array;
  private ctx: VirtioContext | undefined;
  private readonly chain = new DescChain(NINEP_QUEUE_SIZE);
  // Reused for every request: the copied T-message, and the bounce buffer for split replies.
  private readonly request: Uint8Array;
  private readonly bounce: Uint8Array;
  private readonly log: ((line: string) => void) | undefined;

  constructor(opts: VirtioNinePOptions) {
    this.log = opts.log;
    const tag = Buffer.from(opts.tag, 'utf8');
    if (tag.length === 0 || tag.length > MAX_TAG_BYTES || /[\s\0,]/.test(opts.tag)) {
      throw new ShareError('bad-tag', `Mount tag "${opts.tag}" must be 1 to ${MAX_TAG_BYTES} bytes without spaces or commas`);
    }
    this.config = new Uint8Array(NinePConfig.TAG + tag.length);
    new DataView(this.config.buffer).setUint16(NinePConfig.TAG_LEN, tag.length, true);
    this.config.set(tag, NinePConfig.TAG);
    this.server = new NinePServer({ root: opts.root, readOnly: opts.readOnly ?? false, tag: opts.tag, msize: opts.msize ?? DEFAULT_MSIZE, log: opts.log });
    this.request = new Uint8Array(this.server.maxMsize);
    this.bounce = new Uint8Array(this.server.maxMsize);
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    const b = this.config;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (b[offset + i] ?? 0); // 0 beyond the tag
    return v;
  }

  writeConfig(): void {
    // The tag is read-only.
  }

  activate(ctx: VirtioContext): void {
    this.ctx = ctx;
    this.process();
  }

  notify(): void { this.process(); }

  /** The driver reset the device: the 9P session ends with it (every fid is clunked). */
  reset(): void {
    this.ctx = undefined;
    this.server.reset();
  }

  close(): void {
    this.ctx = undefined;
    this.server.close();
  }

  /**
   * The tag and the session (server.ts save): a restored guest's mount goes on, its open files
   * opened again by path; files deleted from the host meanwhile are lost to it (EBADF).
   */
  save(): unknown { return { tag: this.server.tag, session: this.server.save() }; }

  restore(state: unknown): void {
    const s = state as { tag?: unknown; session?: NinePSession } | null;
    if (s?.tag !== this.server.tag) throw new ShareError('bad-tag', `Saved share had tag ${String(s?.tag)}, this one has ${this.server.tag}`);
    if (s.session === undefined) { this.server.reset(); return; }
    const lost = this.server.restore(s.session);
    if (lost) this.log?.(`9p ${this.server.tag}: ${lost} open files of the snapshot are gone from the host; the guest gets EBADF for them`);
  }

  private process(): void {
    const ctx = this.ctx;
    const q = ctx?.queues[0];
    if (!ctx || !q?.ready) return;
    const { chain, request, bounce, server, stats } = this;
    const mem = ctx.mem;
    let served = 0;
    while (q.pop(chain)) {
      // A T-message longer than our buffer arrives cut short, and the server answers EPROTO.
      const length = chain.read(mem, 0, request.subarray(0, Math.min(chain.readableBytes, request.length)));
      let written: number;
      const writable = chain.count - chain.readable;
      if (writable === 1) {
        const addr = chain.addr[chain.readable]!;
        const len = Math.min(chain.len[chain.readable]!, server.maxMsize);
        written = server.handle(request, mem.view(addr, len)!, length); // checked to lie in RAM when the chain was read
        mem.wrote(addr, written);
      } else {
        written = server.handle(request, bounce, length, Math.min(chain.writableBytes, bounce.length));
        chain.write(mem, 0, bounce.subarray(0, written));
      }
      stats.requests++;
      stats.requestBytes += length;
      stats.replyBytes += written;
      q.push(chain.head, written);
      served++;
    }
    if (served) ctx.signalUsed(q);
  }
}
