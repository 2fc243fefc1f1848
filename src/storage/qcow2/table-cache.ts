/**
 * An LRU cache of one-cluster metadata tables (L2 tables, refcount blocks) read from the image.
 *
 * Normally write-through: a change is written to the file by the caller's store() at the moment
 * the caller's ordering requires (see image.ts). In deferred mode (whole-image walks such as
 * snapshot creation) changed tables are only marked dirty and written on eviction or
 * writeDirty(), so a walk costs one write per table instead of one per entry.
 */
import type { HostFile } from '../host-file.js';

export interface Table {
  offset: number;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  dirty: boolean;
}

export class TableCache {
  private readonly tables = new Map<number, Table>();
  private last: Table | null = null;
  private deferred = false;

  constructor(private readonly file: HostFile, readonly tableSize: number, private readonly capacity: number) {}

  /** The table at `offset`, read from the file on a miss. */
  get(offset: number): Table {
    const last = this.last;
    if (last !== null && last.offset === offset) return last;
    let t = this.tables.get(offset);
    if (t !== undefined) {
      this.tables.delete(offset);
      this.tables.set(offset, t); // most recently used goes last
    } else {
      t = this.slot(offset);
      try {
        this.file.read(offset, t.bytes);
      } catch (err) {
        this.tables.delete(offset);
        throw err;
      }
    }
    this.last = t;
    return t;
  }

  /** A table for a freshly allocated cluster: zeroes, or a copy of `from`. Not written yet. */
  create(offset: number, from?: Uint8Array): Table {
    this.drop(offset);
    const t = this.slot(offset);
    if (from) t.bytes.set(from); else t.bytes.fill(0);
    this.last = t;
    return t;
  }

  /** Writes bytes [start, end) of `t` to the file (or marks it dirty in deferred mode). */
  store(t: Table, start = 0, end = this.tableSize): void {
    if (this.deferred) { t.dirty = true; return; }
    this.file.write(t.offset + start, t.bytes, start, end - start);
  }

  /** Writes the whole table now, even in deferred mode (new tables must be on disk before anything points to them). */
  storeNow(t: Table): void {
    t.dirty = false;
    this.file.write(t.offset, t.bytes);
  }

  /** Switches deferred mode; leaving it writes every dirty table. */
  setDeferred(on: boolean): void {
    this.deferred = on;
    if (!on) this.writeDirty();
  }

  writeDirty(): void {
    for (const t of this.tables.values()) this.writeBack(t);
  }

  /** Forgets the table at `offset` (its cluster was freed or reused). */
  drop(offset: number): void {
    const t = this.tables.get(offset);
    if (t === undefined) return;
    this.writeBack(t);
    this.tables.delete(offset);
    if (this.last === t) this.last = null;
  }

  clear(): void {
    this.writeDirty();
    this.tables.clear();
    this.last = null;
  }

  /** A table object for `offset`, recycling the least recently used one when full. */
  private slot(offset: number): Table {
    let t: Table;
    if (this.tables.size >= this.capacity) {
      const oldest = this.tables.values().next().value as Table;
      this.writeBack(oldest);
      this.tables.delete(oldest.offset);
      if (this.last === oldest) this.last = null;
      t = oldest;
      t.offset = offset;
    } else {
      const bytes = new Uint8Array(this.tableSize);
      t = { offset, bytes, view: new DataView(bytes.buffer), dirty: false };
    }
    this.tables.set(offset, t);
    return t;
  }

  private writeBack(t: Table): void {
    if (!t.dirty) return;
    t.dirty = false;
    this.file.write(t.offset, t.bytes);
  }
}
