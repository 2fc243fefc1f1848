/**
 * The TCP flows of a migrated VM's user network, relayed. A flow's host socket cannot leave the
 * source's process (its kernel holds the TCP state, and the peer knows that host's address), so
 * after the switch the source keeps it and the migration connection becomes a channel carrying
 * every flow's bytes both ways; on the target, the NAT's connection has a RelayedSocket where it
 * had a net.Socket. Per flow: DATA, END (that direction is done), RESET (the flow aborted),
 * PAUSE and RESUME (the receiving end is full / has room again), so backpressure reaches the
 * other end. The source ends the channel once its last flow has closed; a channel that fails
 * resets every flow on both sides.
 */
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { HostSocket } from '../net/user/tcp-conn.js';
import { type Frame, type FrameReader, type FrameWriter, MigrationError, Tag, parseJson } from './stream.js';

/** A flow leaving: its NIC, its NAT state (opaque here) and the host socket that stays behind. */
export interface OutgoingFlow { nic: number; state: unknown; socket: HostSocket }
/** A flow arriving: its NIC, its NAT state, and the socket its bytes are relayed through. */
export interface IncomingFlow { nic: number; state: unknown; socket: RelayedSocket }

/** A FLOW frame's JSON: which directions had already ended when the flow was taken. */
interface FlowHeader { id: number; nic: number; state: unknown; readEnded: boolean; writeEnded: boolean }

/** Readable buffer of a relayed flow before it asks the source to pause. */
const RELAYED_HIGH_WATER = 64 * 1024;

function idFrame(id: number, data?: Uint8Array): Uint8Array {
  const b = Buffer.allocUnsafe(4 + (data?.length ?? 0));
  b.writeUInt32LE(id, 0);
  if (data) b.set(data, 4);
  return b;
}

const frameId = (f: Frame): number => {
  if (f.payload.length < 4) throw new MigrationError(`Corrupt stream: a flow frame (tag ${f.tag}) without its flow`);
  return Buffer.from(f.payload.buffer, f.payload.byteOffset, 4).readUInt32LE(0);
};

/** Sends the FLOW frames of `flows` (their ids are their places in the list). */
export function sendFlows(w: FrameWriter, flows: readonly OutgoingFlow[]): void {
  flows.forEach((f, id) => {
    const head: FlowHeader = { id, nic: f.nic, state: f.state, readEnded: f.socket.readableEnded, writeEnded: f.socket.writableEnded };
    w.json(Tag.FLOW, head);
  });
}

/** The source's end: relays `flows` over the migration connection until the last has closed; resolves then (or when the channel fails, every flow reset). */
export function relayFromSource(socket: Socket, w: FrameWriter, r: FrameReader, flows: readonly OutgoingFlow[]): Promise<void> {
  const open = new Map<number, HostSocket>();
  /** Flows the target paused; flows whose host socket is full (the target was asked to pause); flows the target reset. */
  const peerPaused = new Set<number>(), full = new Set<number>(), resetByPeer = new Set<number>();
  let blocked = false;
  let finish!: () => void;
  const done = new Promise<void>(resolve => { finish = resolve; });
  const forget = (id: number): void => {
    if (!open.delete(id) || open.size) return;
    socket.end();
    finish();
  };
  socket.on('drain', () => {
    blocked = false;
    for (const [id, s] of open) if (!peerPaused.has(id)) s.resume();
  });
  flows.forEach((f, id) => {
    const s = f.socket;
    open.set(id, s);
    s.on('data', (d: Buffer) => {
      w.write(Tag.FLOW_DATA, idFrame(id, d));
      if (socket.writableNeedDrain && !blocked) {
        blocked = true;
        for (const o of open.values()) o.pause();
      }
    });
    s.on('end', () => w.write(Tag.FLOW_END, idFrame(id)));
    s.on('error', () => {}); // 'close' follows
    s.on('close', () => {
      if (!resetByPeer.has(id) && !(s.readableEnded && s.writableFinished)) w.write(Tag.FLOW_RESET, idFrame(id));
      forget(id);
    });
    if (s.destroyed) queueMicrotask(() => forget(id));
    else s.resume();
  });
  const serve = async (): Promise<void> => {
    for (;;) {
      const f = await r.next(0);
      const id = frameId(f), s = open.get(id);
      if (!s) continue; // a flow that has closed here meanwhile
      switch (f.tag) {
        case Tag.FLOW_DATA:
          if (!s.write(f.payload.subarray(4)) && !full.has(id)) {
            full.add(id);
            w.write(Tag.FLOW_PAUSE, idFrame(id));
            s.once('drain', () => { full.delete(id); w.write(Tag.FLOW_RESUME, idFrame(id)); });
          }
          break;
        case Tag.FLOW_END: s.end(); break;
        case Tag.FLOW_RESET:
          resetByPeer.add(id);
          s.resetAndDestroy();
          break;
        case Tag.FLOW_PAUSE: peerPaused.add(id); s.pause(); break;
        case Tag.FLOW_RESUME: peerPaused.delete(id); if (!blocked) s.resume(); break;
        default: throw new MigrationError(`Unexpected frame ${f.tag} while relaying flows`);
      }
    }
  };
  serve().catch(() => {
    // The channel ended or failed: what is still open cannot reach its guest any more.
    for (const s of [...open.values()]) s.resetAndDestroy();
    socket.destroy();
    finish();
  });
  return done;
}

/** The target's end of the channel: the RelayedSockets of the flows that arrived, served from start() on. */
export class FlowChannel {
  private readonly flows = new Map<number, RelayedSocket>();
  private readonly incoming: IncomingFlow[] = [];

  constructor(private readonly socket: Socket, private readonly w: FrameWriter, private readonly r: FrameReader) {
    socket.on('drain', () => { for (const s of this.flows.values()) s.release(); });
  }

  /** A FLOW frame: the flow's socket, whose bytes wait until the source relays them. */
  add(payload: Uint8Array): void {
    const h = parseJson<FlowHeader>(payload);
    if (typeof h.id !== 'number' || typeof h.nic !== 'number' || this.flows.has(h.id)) throw new MigrationError('Corrupt stream: a broken FLOW frame');
    const s = new RelayedSocket(h.id, this, h.readEnded === true, h.writeEnded === true);
    this.flows.set(h.id, s);
    this.incoming.push({ nic: h.nic, state: h.state, socket: s });
  }

  get arrived(): readonly IncomingFlow[] { return this.incoming; }

  /** Serves the relay until the source ends it; a failed channel resets every flow still open. */
  start(): void {
    if (!this.flows.size) { this.socket.end(); return; }
    const serve = async (): Promise<void> => {
      for (;;) {
        const f = await this.r.next(0);
        const s = this.flows.get(frameId(f));
        if (!s) continue;
        switch (f.tag) {
          case Tag.FLOW_DATA: s.fromSource(f.payload.subarray(4)); break;
          case Tag.FLOW_END: s.endFromSource(); break;
          case Tag.FLOW_RESET: s.resetBySource(); break;
          case Tag.FLOW_PAUSE: s.peerPaused = true; break;
          case Tag.FLOW_RESUME: s.peerPaused = false; s.release(); break;
          default: throw new MigrationError(`Unexpected frame ${f.tag} while relaying flows`);
        }
      }
    };
    serve().catch(() => {
      // Only flows still open end to end: one whose ends have both crossed may still be giving the guest its last bytes.
      for (const s of [...this.flows.values()]) s.resetBySource();
      this.socket.destroy();
    });
  }

  /** @internal */ send(tag: Tag, id: number, data?: Uint8Array): void { this.w.write(tag, idFrame(id, data)); }
  /** @internal */ get blocked(): boolean { return this.socket.writableNeedDrain; }
  /** @internal */ forget(id: number): void { this.flows.delete(id); }
}

/** What the NAT's connection on the target holds for a relayed flow: a Duplex whose other end is the source's host socket. */
export class RelayedSocket extends Duplex {
  /** The source asked us to stop sending (its host socket is full). */
  peerPaused = false;
  private askedPause = false;
  private resetSeen = false;
  private endSent: boolean;
  private gotEnd: boolean;
  private readonly held: (() => void)[] = [];

  constructor(private readonly id: number, private readonly ch: FlowChannel, readEnded: boolean, writeEnded: boolean) {
    super({ allowHalfOpen: true, readableHighWaterMark: RELAYED_HIGH_WATER });
    this.endSent = writeEnded;
    this.gotEnd = readEnded;
    if (readEnded) this.push(null);
    if (writeEnded) this.end();
  }

  override _read(): void {
    if (!this.askedPause || this.gotEnd) return;
    this.askedPause = false;
    this.ch.send(Tag.FLOW_RESUME, this.id);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.ch.send(Tag.FLOW_DATA, this.id, chunk);
    if (this.peerPaused || this.ch.blocked) this.held.push(cb); // writableLength grows: the guest's window closes
    else cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.endSent) this.ch.send(Tag.FLOW_END, this.id);
    this.endSent = true;
    if (this.gotEnd) this.ch.forget(this.id);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.resetSeen && !(this.gotEnd && this.endSent)) this.ch.send(Tag.FLOW_RESET, this.id);
    this.ch.forget(this.id);
    for (const h of this.held.splice(0)) h();
    cb(err);
  }

  resetAndDestroy(): this { return this.destroy(); }

  /** @internal Bytes the source's host socket read. */
  fromSource(d: Uint8Array): void {
    if (!this.push(d) && !this.askedPause) {
      this.askedPause = true;
      this.ch.send(Tag.FLOW_PAUSE, this.id);
    }
  }

  /** @internal The source's host socket read its end. */
  endFromSource(): void {
    this.gotEnd = true;
    this.push(null);
    if (this.endSent) this.ch.forget(this.id);
  }

  /** @internal The source's host socket failed or the channel did: the connection resets. */
  resetBySource(): void {
    this.resetSeen = true;
    this.destroy(Object.assign(new Error('The relayed flow was reset'), { code: 'ECONNRESET' }));
  }

  /** @internal Writes held for room go on when neither end is full. */
  release(): void {
    if (this.peerPaused || this.ch.blocked) return;
    for (const h of this.held.splice(0)) h();
  }
}
