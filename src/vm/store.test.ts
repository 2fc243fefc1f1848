import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { VmStore, type VmRecord } from './store.js';
import { tempDir } from './testing.js';

test('records survive reopening, and the file is a real SQLite database', () => {
  const { dir, cleanup } = tempDir('store');
  try {
    const file = join(dir, 'host.db');
    const a: VmRecord = { id: 'id-a', name: 'a', spec: { name: 'a', cpus: 2, memoryMiB: 128, cpuShares: 512, cpuLimit: 50 }, state: 'created', createdAt: '2026-01-01T00:00:00.000Z', cpuSeconds: 0 };
    let store = new VmStore(file);
    store.insert(a);
    store.insert({ ...a, id: 'id-b', name: 'b', createdAt: '2026-01-02T00:00:00.000Z' });
    assert.throws(() => store.insert({ ...a, id: 'id-c' }), /UNIQUE constraint failed: vms\.name/);
    store.update({ ...a, state: 'stopped', startedAt: '2026-01-01T00:00:01.000Z', stoppedAt: '2026-01-01T00:00:09.000Z', exit: { reason: 'poweroff', code: 0 }, cpuSeconds: 1.5 });
    store.close();
    store = new VmStore(file);
    const all = store.all();
    assert.deepEqual(all.map(r => r.name), ['a', 'b']);
    assert.deepEqual(all[0], { ...a, state: 'stopped', startedAt: '2026-01-01T00:00:01.000Z', stoppedAt: '2026-01-01T00:00:09.000Z', exit: { reason: 'poweroff', code: 0 }, cpuSeconds: 1.5 });
    store.delete('id-b');
    store.close();
    // Debian's sqlite3 reads what the WebAssembly SQLite wrote.
    const rows = execFileSync('sqlite3', [file, "SELECT name, state, json_extract(spec, '$.cpuLimit') FROM vms; PRAGMA integrity_check;"], { encoding: 'utf8' });
    assert.equal(rows, 'a|stopped|50\nok\n');
  } finally {
    cleanup();
  }
});
