/**
 * virtio-rng, the entropy device (VIRTIO 1.x §5.4): one queue, requestq; each chain's writable
 * part is filled with random bytes from the host (node:crypto). No features, no config space.
 */
import { randomFillSync } from 'node:crypto';
import { DeviceId, type FeatureWords, type VirtioContext, type VirtioDevice } from '../device.js';
import { DescChain, type VirtQueue } from '../queue.js';

export const RNG_QUEUE_SIZE = 64;
/** Bytes given per request at most: Linux asks for a few dozen; a hostile 4 GiB buffer must not stall the VM. */
export const RNG_MAX_REQUEST = 64 * 1024;

export class VirtioRng implements VirtioDevice {
  readonly name = 'virtio-rng';
  readonly deviceId = DeviceId.ENTROPY;
  readonly features: FeatureWords = { lo: 0, hi: 0 };
  readonly queueMaxSizes = [RNG_QUEUE_SIZE];
  /** Random bytes handed to the guest. */
  bytesServed = 0;
  private ctx: VirtioContext | undefined;
  private readonly chain = new DescChain(RNG_QUEUE_SIZE);

  readConfig(): number { return 0; }
  writeConfig(): void {}

  activate(ctx: VirtioContext): void {
    this.ctx = ctx;
    this.notify();
  }

  notify(): void {
    const ctx = this.ctx;
    const q: VirtQueue | undefined = ctx?.queues[0];
    if (!ctx || !q?.ready) return;
    const chain = this.chain;
    let served = 0;
    while (q.pop(chain)) {
      let left = Math.min(chain.writableBytes, RNG_MAX_REQUEST);
      let written = 0;
      for (let i = chain.readable; i < chain.count && left > 0; i++) {
        const n = Math.min(chain.len[i]!, left);
        if (n === 0) continue;
        const view = ctx.mem.view(chain.addr[i]!, n)!; // checked to lie in RAM when the chain was read
        randomFillSync(view);
        ctx.mem.wrote(chain.addr[i]!, n);
        written += n;
        left -= n;
      }
      this.bytesServed += written;
      q.push(chain.head, written);
      served++;
    }
    if (served) ctx.signalUsed(q);
  }

  reset(): void { this.ctx = undefined; }
  close(): void { this.reset(); }
  save(): unknown { return {}; }
  restore(): void {}
}
