/**
 * The host's memory across restarts: every VM's spec and record in an SQLite database
 * (stateDir/host.db). SQLite gives atomic, crash-safe updates of single rows (its rollback
 * journal) where a JSON file rewritten in place would not. Node 20 has no node:sqlite and gasang
 * takes no native addons, so this is SQLite compiled to WebAssembly (node-sqlite3-wasm) with its
 * VFS on the real file.
 */
import { createRequire } from 'node:module';
import type { VmInfo, VmState } from './types.js';
import type { CheckedSpec } from './spec.js';

const require = createRequire(import.meta.url);
const { Database } = require('node-sqlite3-wasm') as typeof import('node-sqlite3-wasm');
type Db = InstanceType<typeof Database>;

/** What the store keeps of a VM (usage counters other than CPU time are per run and not kept). */
export interface VmRecord {
  id: string;
  name: string;
  spec: CheckedSpec;
  state: VmState;
  createdAt: string;
  startedAt?: string;
  stoppedAt?: string;
  exit?: VmInfo['exit'];
  /** CPU seconds of all runs so far. */
  cpuSeconds: number;
}

const SCHEMA_VERSION = 1;

export class VmStore {
  private readonly db: Db;

  constructor(readonly file: string) {
    this.db = new Database(file);
    try {
      this.db.exec(`
        PRAGMA journal_mode = DELETE;
        PRAGMA synchronous = FULL;
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS vms (
          id TEXT PRIMARY KEY,
          name TEXT NOT NULL UNIQUE,
          spec TEXT NOT NULL,
          state TEXT NOT NULL,
          created_at TEXT NOT NULL,
          started_at TEXT,
          stopped_at TEXT,
          exit TEXT,
          cpu_seconds REAL NOT NULL DEFAULT 0
        );`);
      const v = this.db.get(`SELECT value FROM meta WHERE key = 'schema'`);
      if (!v) this.db.run(`INSERT INTO meta (key, value) VALUES ('schema', ?)`, [String(SCHEMA_VERSION)]);
      else if (Number(v.value) !== SCHEMA_VERSION) throw new Error(`${file}: store schema ${String(v.value)}, this gasang knows ${SCHEMA_VERSION}`);
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  all(): VmRecord[] {
    return this.db.all(`SELECT * FROM vms ORDER BY created_at, name`).map(row => ({
      id: String(row.id),
      name: String(row.name),
      spec: JSON.parse(String(row.spec)) as CheckedSpec,
      state: String(row.state) as VmState,
      createdAt: String(row.created_at),
      startedAt: row.started_at === null ? undefined : String(row.started_at),
      stoppedAt: row.stopped_at === null ? undefined : String(row.stopped_at),
      exit: row.exit === null ? undefined : (JSON.parse(String(row.exit)) as VmInfo['exit']),
      cpuSeconds: Number(row.cpu_seconds),
    }));
  }

  insert(r: VmRecord): void {
    this.db.run(
      `INSERT INTO vms (id, name, spec, state, created_at, started_at, stopped_at, exit, cpu_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [r.id, r.name, JSON.stringify(r.spec), r.state, r.createdAt, r.startedAt ?? null, r.stoppedAt ?? null, r.exit ? JSON.stringify(r.exit) : null, r.cpuSeconds],
    );
  }

  /** Saves the parts of a record that change (the spec and name do not). */
  update(r: VmRecord): void {
    this.db.run(
      `UPDATE vms SET state = ?, started_at = ?, stopped_at = ?, exit = ?, cpu_seconds = ? WHERE id = ?`,
      [r.state, r.startedAt ?? null, r.stoppedAt ?? null, r.exit ? JSON.stringify(r.exit) : null, r.cpuSeconds, r.id],
    );
  }

  delete(id: string): void {
    this.db.run(`DELETE FROM vms WHERE id = ?`, [id]);
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}
