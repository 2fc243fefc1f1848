/**
 * The forwarding database (Linux bridge's "fdb"): which port a MAC address was last seen on, per
 * VLAN, with aging and two caps so a MAC flood cannot grow it without bound: a total capacity and
 * a limit per port. As Linux's bridge does when its limit is reached (br_fdb max_learned), a full
 * table learns nothing new until entries age out; frames to unlearned addresses are flooded within
 * their VLAN, never dropped.
 *
 * Ports' own configured MACs are static entries: they never age, and learning never moves them,
 * so no port can take over another's address.
 */

/** What the table needs of a port. */
export interface FdbPort {
  /** Dynamic entries pointing at this port. */
  learned: number;
  readonly macLimit: number;
}

interface Entry<P> { port: P; seenMs: number }

export class Fdb<P extends FdbPort> {
  /** VLAN id → (MAC → entry). */
  private readonly vlans = new Map<number, Map<number, Entry<P>>>();
  private readonly statics = new Map<number, P>();
  private count = 0;
  /** Addresses not learned because the table or the port was full. */
  refused = 0;

  constructor(readonly capacity: number, readonly agingMs: number) {}

  get size(): number { return this.count; }

  addStatic(mac: number, port: P): void { this.statics.set(mac, port); }
  removeStatic(mac: number): void { this.statics.delete(mac); }

  /** Records that `mac` (unicast) was seen on `port` in `vlan`. */
  learn(vlan: number, mac: number, port: P, nowMs: number): void {
    if (this.statics.has(mac)) return;
    let table = this.vlans.get(vlan);
    const e = table?.get(mac);
    if (e) {
      if (e.port !== port) {
        if (port.learned >= port.macLimit) { this.refused++; return; }
        e.port.learned--;
        port.learned++;
        e.port = port;
      }
      e.seenMs = nowMs;
      return;
    }
    if (this.count >= this.capacity || port.learned >= port.macLimit) { this.refused++; return; }
    if (!table) this.vlans.set(vlan, (table = new Map()));
    table.set(mac, { port, seenMs: nowMs });
    port.learned++;
    this.count++;
  }

  /** The port `mac` lives on in `vlan`, or undefined (unknown or aged out: flood). */
  lookup(vlan: number, mac: number, nowMs: number): P | undefined {
    const s = this.statics.get(mac);
    if (s) return s;
    const table = this.vlans.get(vlan);
    const e = table?.get(mac);
    if (!e) return undefined;
    if (nowMs - e.seenMs > this.agingMs) {
      this.drop(table!, mac, e);
      return undefined;
    }
    return e.port;
  }

  /** Forgets aged entries (called from a timer, so an idle table shrinks too). */
  sweep(nowMs: number): void {
    for (const [vlan, table] of this.vlans) {
      for (const [mac, e] of table) if (nowMs - e.seenMs > this.agingMs) this.drop(table, mac, e);
      if (table.size === 0) this.vlans.delete(vlan);
    }
  }

  /** Forgets everything learned on `port`. */
  forget(port: P): void {
    for (const table of this.vlans.values()) for (const [mac, e] of table) if (e.port === port) this.drop(table, mac, e);
    for (const [mac, p] of this.statics) if (p === port) this.statics.delete(mac);
  }

  private drop(table: Map<number, Entry<P>>, mac: number, e: Entry<P>): void {
    table.delete(mac);
    e.port.learned--;
    this.count--;
  }
}
