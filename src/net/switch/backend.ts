/**
 * The VM thread's end of a switch port: a NetBackend for the VM's virtio-net device, opened from
 * the PortHandle that VirtualSwitch.addPort() returned in the daemon's thread:
 *
 *   // daemon: const handle = vswitch.addPort({ id: 'web/0', vm: 'web', mac });
 *   //         new Worker(url, { workerData: { handle }, transferList: handleTransfer(handle) });
 *   // VM thread: const backend = new SwitchPortBackend(workerData.handle);
 *
 * Frames the guest sends go into the channel (dropped and counted when it is full: a NIC's full
 * transmit ring). Frames for the guest are handed to the device while it has receive buffers;
 * when it has none they stay in the channel until the device calls onRxSpace. What the guest's
 * driver accepts (offloads, link) is published in the shared state block, which the switch reads
 * to decide whether to finish offloaded frames for it.
 */
import type { FrameMeta, NetBackend, NicPort } from '../../devices/virtio/net/backend.js';
import { Off, St, openChannel, type Endpoint, type PortHandle } from './channel.js';

export class SwitchPortBackend implements NetBackend {
  private readonly end: Endpoint;
  private port: NicPort | undefined;
  private published = -1;
  private publishedMax = -1;
  private readonly counters = { txFrames: 0, txBytes: 0, txDropped: 0, rxFrames: 0, rxBytes: 0 };

  constructor(private readonly handle: PortHandle) {
    this.end = openChannel(handle);
  }

  get description(): string { return `switch port ${this.handle.id}`; }

  attach(port: NicPort): void {
    this.port = port;
    port.onRxSpace = () => {
      this.publish(port);
      this.end.rx.resume();
    };
    this.publish(port);
    this.end.rx.start(this.take);
  }

  send(frame: Uint8Array, meta: FrameMeta): void {
    const port = this.port;
    if (!port || this.closed) return;
    this.publish(port);
    if (this.end.tx.push(frame, meta)) {
      this.counters.txFrames++;
      this.counters.txBytes += frame.length;
    } else {
      this.counters.txDropped++;
      Atomics.add(this.end.state, St.VM_DROPS, 1);
    }
  }

  stats(): Record<string, number> { return { ...this.counters, rxCorrupt: this.end.rx.corrupt }; }

  close(): void { this.end.close(); }

  /** The switch removed the port. */
  private get closed(): boolean { return Atomics.load(this.end.state, St.CLOSED) !== 0; }

  private readonly take = (frame: Uint8Array, meta: FrameMeta): boolean => {
    const port = this.port!;
    this.publish(port);
    if (!port.deliver(frame, meta)) return false;
    this.counters.rxFrames++;
    this.counters.rxBytes += frame.length;
    return true;
  };

  /** Tells the switch what the guest takes now (the driver may have renegotiated). */
  private publish(port: NicPort): void {
    const o = port.offloads;
    const bits = (o.csum ? Off.CSUM : 0) | (o.tso4 ? Off.TSO4 : 0) | (o.tso6 ? Off.TSO6 : 0) | (port.linkUp ? Off.LINK : 0);
    if (bits !== this.published) Atomics.store(this.end.state, St.OFFLOADS, (this.published = bits));
    if (o.maxFrame !== this.publishedMax) Atomics.store(this.end.state, St.MAX_FRAME, (this.publishedMax = o.maxFrame));
  }
}
