/**
 * Live migration in: checks the source's HELLO (version, one-time token, the VM's shape against
 * the board it is given), builds the board, takes RAM pages as they come (straight into guest
 * RAM, each frame checked), and at END the board's and harts' state; answers RUNNING once the
 * VM is ready to run. Anything wrong — a bad token, a corrupt frame, a page outside RAM, a state
 * that does not fit — is answered with ERROR and nothing is kept.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { HART_STATE_BYTES } from '../cpu/layout.js';
import { VirtMachine, type VirtBoardSpec, type VirtIo } from '../machine/virt.js';
import { restoreVirt, type VirtShape, type VirtState } from '../machine/virt-state.js';
import { DiskReceiver } from './disks.js';
import { FlowChannel, type IncomingFlow } from './relay.js';
import { FrameReader, FrameWriter, MigrationError, STREAM_VERSION, Tag, parseJson } from './stream.js';

const PAGE = 4096;

export interface MigrateInOptions {
  /** The token the source must present. */
  token: string;
  /** The board to build for the VM the source describes (its owner's spec), or a throw to refuse it. */
  board: (spec: unknown, shape: VirtShape) => { board: VirtBoardSpec; io: VirtIo };
  /** Longest wait for the source's next frame (default 30 s). */
  timeoutMs?: number;
  /** Block migration: the drives this VM receives (the source must send exactly these), where each is written, and what puts them in place once all arrived (before the VM's state is restored; a throw refuses the migration). */
  disks?: { drives: readonly number[]; pathOf: (drive: number) => string; arrived: () => void };
}

/**
 * Receives a VM on `socket`; resolves with it built and restored (not yet running), the source's
 * spec, the network flows that moved with it (their sockets relayed from the source once
 * confirmed), and `confirm`, to await before running it (it tells the source to end its copy).
 */
export async function migrateIn(socket: Socket, opts: MigrateInOptions): Promise<{ vm: VirtMachine; spec: unknown; flows: readonly IncomingFlow[]; confirm: () => Promise<void> }> {
  const w = new FrameWriter(socket), r = new FrameReader(socket);
  const channel = new FlowChannel(socket, w, r);
  const timeout = opts.timeoutMs ?? 30_000;
  let vm: VirtMachine | undefined;
  let disks: DiskReceiver | undefined;
  try {
    const hello = parseJson<{ version: number; token: string; shape: VirtShape; spec: unknown; disks: number[] }>(await r.expect(Tag.HELLO, timeout));
    if (hello.version !== STREAM_VERSION) throw new MigrationError(`Stream version ${String(hello.version)}; this gasang speaks ${STREAM_VERSION}`);
    const given = Buffer.from(String(hello.token ?? '')), want = Buffer.from(opts.token);
    if (given.length !== want.length || !timingSafeEqual(given, want)) throw new MigrationError('Wrong migration token');
    if (!hello.shape) throw new MigrationError('The source named no board shape');
    const copied = [...(opts.disks?.drives ?? [])].sort(), sent = Array.isArray(hello.disks) ? [...hello.disks].sort() : [];
    if (copied.join() !== sent.join()) throw new MigrationError(`This VM receives drive(s) ${copied.join(', ') || 'none'} by block migration; the source sends ${sent.join(', ') || 'none'}`);
    disks = new DiskReceiver(copied, opts.disks?.pathOf ?? (() => ''));
    const { board, io } = opts.board(hello.spec, hello.shape);
    vm = await VirtMachine.restore(board, io, async m => {
      w.write(Tag.READY);
      const ram = m.cpu.ram, pages = ram.length / PAGE;
      let state: Partial<{ virt: VirtState }> | undefined, harts: Uint8Array | undefined;
      for (;;) {
        const f = await r.next(timeout);
        if (f.tag === Tag.PAGES) {
          if (f.payload.length % (4 + PAGE)) throw new MigrationError('Corrupt stream: a PAGES frame of a broken length');
          const dv = new DataView(f.payload.buffer, f.payload.byteOffset, f.payload.length);
          for (let at = 0; at < f.payload.length; at += 4 + PAGE) {
            const p = dv.getUint32(at, true);
            if (p >= pages) throw new MigrationError(`Corrupt stream: page ${p} outside this VM's ${pages}`);
            ram.set(f.payload.subarray(at + 4, at + 4 + PAGE), p * PAGE);
          }
        } else if (f.tag === Tag.DISK || f.tag === Tag.DISK_END) disks!.take(f.tag, f.payload);
        else if (f.tag === Tag.FLOW) channel.add(f.payload);
        else if (f.tag === Tag.STATE) state = parseJson<{ virt: VirtState }>(f.payload);
        else if (f.tag === Tag.HARTS) harts = f.payload;
        else if (f.tag === Tag.END) break;
        else throw new MigrationError(`Unexpected frame ${f.tag}`);
      }
      const n = m.cpu.harts.length;
      if (!state?.virt || harts?.length !== n * HART_STATE_BYTES) throw new MigrationError('The stream ended without the VM\'s state');
      disks!.check();
      if (copied.length) opts.disks!.arrived();
      restoreVirt(m, state.virt, Array.from({ length: n }, (_, i) => harts!.subarray(i * HART_STATE_BYTES, (i + 1) * HART_STATE_BYTES)));
    });
    const built = vm;
    // RUNNING goes out before the guest runs here: the source ends its own only when it has it.
    const confirm = async (): Promise<void> => {
      w.write(Tag.RUNNING);
      channel.start();
    };
    return { vm: built, spec: hello.spec, flows: channel.arrived, confirm };
  } catch (err) {
    disks?.abort();
    if (vm) for (const t of vm.virtio) t.close();
    const e = err instanceof MigrationError ? err : new MigrationError(`Migration refused: ${(err as Error).message}`, { cause: err });
    if (!socket.destroyed) { w.json(Tag.ERROR, { message: e.message }); socket.end(); }
    throw e;
  }
}
