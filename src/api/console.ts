/**
 * A VM console over WebSocket. Binary frames from the server are console output; frames from the
 * client (binary, or text as UTF-8) are typing, accepted only from the client holding the write
 * side (`?write=1` when connecting). Text frames from the server are JSON events:
 *
 *   {"type":"hello","vm":NAME,"writer":BOOL}          first, once
 *   {"type":"dropped","bytes":N}                      output this slow client missed
 *   {"type":"error","message":TEXT}                   typing refused (read-only client, ...)
 *   {"type":"stopped","state":STATE,"exit":{...}}      the VM's run ended
 *
 * A client that does not keep up misses output rather than making the daemon buffer without
 * bound: a flooding guest costs each slow watcher at most OUTPUT_BACKLOG bytes of memory.
 */
import type { ConsoleClient, VmHandle } from '../vm/types.js';
import { CloseCode, type WsConnection } from './websocket.js';

export const OUTPUT_BACKLOG = 1 << 20;

export type ConsoleEvent =
  | { type: 'hello'; vm: string; writer: boolean }
  | { type: 'dropped'; bytes: number }
  | { type: 'error'; message: string }
  | { type: 'stopped'; state: string; exit?: unknown };

const LIVE_STATES = new Set(['starting', 'running', 'paused', 'stopping']);

/**
 * The daemon's open consoles, by VM, so that every console of a VM hears when a run ends, also
 * consoles attached before the run started.
 */
export class ConsoleRegistry {
  private readonly byVm = new Map<string, Set<WsConnection>>();
  /** VMs whose current run someone waits on. */
  private readonly watched = new Set<string>();

  get size(): number {
    let n = 0;
    for (const set of this.byVm.values()) n += set.size;
    return n;
  }

  /** Connects an accepted WebSocket to a console client until either side goes away. */
  attach(ws: WsConnection, vm: VmHandle, client: ConsoleClient): void {
    let set = this.byVm.get(vm.id);
    if (!set) { set = new Set(); this.byVm.set(vm.id, set); }
    set.add(ws);
    ws.on('close', () => {
      client.detach();
      set.delete(ws);
      if (set.size === 0 && this.byVm.get(vm.id) === set) this.byVm.delete(vm.id);
    });
    bridge(ws, vm, client);
    this.watch(vm);
  }

  /** After a start: tells the VM's consoles when this run ends. */
  watch(vm: VmHandle): void {
    if (this.watched.has(vm.id) || !LIVE_STATES.has(vm.info().state)) return;
    this.watched.add(vm.id);
    vm.waitStopped().then(
      info => {
        this.watched.delete(vm.id);
        for (const ws of this.byVm.get(vm.id) ?? []) if (ws.isOpen) send(ws, { type: 'stopped', state: info.state, exit: info.exit });
      },
      () => this.watched.delete(vm.id),
    );
  }

  /** Ends every console because the daemon is shutting down. */
  closeAll(): void {
    for (const set of this.byVm.values()) for (const ws of set) ws.close(CloseCode.GoingAway, 'gasangd is shutting down');
  }
}

const send = (ws: WsConnection, e: ConsoleEvent): void => { ws.send(JSON.stringify(e)); };

function bridge(ws: WsConnection, vm: VmHandle, client: ConsoleClient): void {
  let dropped = 0;
  send(ws, { type: 'hello', vm: vm.name, writer: client.writer });
  client.onData(bytes => {
    if (!ws.isOpen) return;
    if (ws.bufferedBytes > OUTPUT_BACKLOG) { dropped += bytes.length; return; }
    if (dropped) { send(ws, { type: 'dropped', bytes: dropped }); dropped = 0; }
    ws.send(bytes);
  });
  ws.on('message', (data, binary) => {
    if (!client.writer) { send(ws, { type: 'error', message: 'This console is read-only: connect with ?write=1 to type' }); return; }
    try {
      client.write(binary ? data : data.toString('utf8'));
    } catch (err) {
      send(ws, { type: 'error', message: err instanceof Error ? err.message : String(err) });
    }
  });
}
