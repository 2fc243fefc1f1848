/**
 * Live migration between two boards over TCP on loopback: a guest counting on its console moves
 * while it counts, and the count neither skips nor repeats; a corrupt byte in the stream, a
 * target that dies and a cut link each leave the source running as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { VirtMachine, type VirtBoardSpec } from '../machine/virt.js';
import { migrateIn } from './receive.js';
import { migrateOut } from './send.js';

const GUEST = join(import.meta.dirname, '..', '..', '..', 'guest', 'default');
const board: VirtBoardSpec = { memoryMiB: 128, cpus: 1, rng: true };
const TOKEN = 'c2VjcmV0LXRva2Vu';

interface Console { text: () => string; waitFor: (re: RegExp, ms?: number) => Promise<void> }
function consoleOf(collect: { text: string }): Console {
  return {
    text: () => collect.text,
    waitFor: async (re, ms = 60_000) => {
      const end = performance.now() + ms;
      while (!re.test(collect.text)) {
        if (performance.now() > end) throw new Error(`Console never showed ${String(re)}: ${JSON.stringify(collect.text.slice(-300))}`);
        await new Promise(r => setTimeout(r, 20));
      }
    },
  };
}
const counts = (text: string): number[] => [...text.matchAll(/N=(\d+)\r\n/g)].map(m => Number(m[1]));

async function countingSource(): Promise<{ m: VirtMachine; out: { text: string }; ended: Promise<unknown> }> {
  const out = { text: '' };
  const m = await VirtMachine.create({ ...board, firmware: join(GUEST, 'fw_jump.bin'), kernel: join(GUEST, 'Image.gz'), initrd: join(GUEST, 'initramfs.cpio.gz'), append: 'console=ttyS0' },
    { output: b => { out.text += Buffer.from(b).toString('latin1'); } });
  const ended = m.run();
  const con = consoleOf(out);
  await con.waitFor(/GASANG-READY/);
  m.input(Buffer.from('i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo N=$i; s="$s$i"; [ ${#s} -gt 5000 ] && s=; done\n'));
  await con.waitFor(/N=200\r\n/);
  return { m, out, ended };
}

/** A target on loopback; `through` may stand between source and target (a faulty link). */
async function target(onSocket?: (s: Socket) => void): Promise<{ port: number; arrived: Promise<{ vm: VirtMachine; out: { text: string }; confirm: () => Promise<void> }>; close: () => void }> {
  let resolve!: (v: { vm: VirtMachine; out: { text: string }; confirm: () => Promise<void> }) => void, reject!: (e: unknown) => void;
  const arrived = new Promise<{ vm: VirtMachine; out: { text: string }; confirm: () => Promise<void> }>((a, b) => { resolve = a; reject = b; });
  arrived.catch(() => {});
  const server = createServer(sock => {
    onSocket?.(sock);
    const out = { text: '' };
    migrateIn(sock, { token: TOKEN, board: () => ({ board, io: { output: b => { out.text += Buffer.from(b).toString('latin1'); } } }) })
      .then(r => resolve({ ...r, out }), reject);
  });
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, arrived, close: () => server.close() };
}

test('a counting guest moves to another board while it counts: no count skipped or repeated', { timeout: 300_000 }, async t => {
  const src = await countingSource();
  const tgt = await target();
  t.after(() => tgt.close());
  const sock = connect(tgt.port, '127.0.0.1');
  await new Promise(r => sock.once('connect', r));
  t.after(() => src.m.stop());
  const moving = migrateOut(src.m, sock, { token: TOKEN, spec: { any: 'spec' } });
  const { vm, out, confirm } = await tgt.arrived;
  await confirm();
  const running = vm.run();
  t.after(async () => { vm.stop(); await running; });
  const stats = await moving;
  await src.ended;
  t.diagnostic(`migrated: ${JSON.stringify(stats)}`);
  assert.ok(stats.rounds >= 1 && stats.downtimeMs < 5000);
  const con = consoleOf(out);
  await con.waitFor(/N=\d+\r\n.*N=\d+\r\n/s);
  // One console stream: a line may begin on the source and end on the target.
  const all = counts(src.out.text + out.text);
  assert.deepEqual(all, Array.from({ length: all.length }, (_, i) => i + 1), `continues at ${counts(out.text)[0]} after ${counts(src.out.text).at(-1)}`);
});

test('a corrupt byte, a target that dies, a cut link: the source runs on as before', { timeout: 300_000 }, async t => {
  const src = await countingSource();
  t.after(() => { src.m.stop(); });
  const faults: [string, (client: Socket, upstream: Socket) => void, RegExp][] = [
    // A proxy flips one byte once 2 MiB went through.
    ['corrupt byte', (client, upstream) => {
      let seen = 0, flipped = false;
      client.on('data', (d: Buffer) => {
        if (!flipped && seen + d.length > 2 << 20) { d = Buffer.from(d); d[(2 << 20) - seen]! ^= 0x20; flipped = true; }
        seen += d.length;
        upstream.write(d);
      });
      upstream.on('data', d => client.write(d));
    }, /refused: Corrupt stream|fails its checksum|Corrupt stream/],
    // The target's end of the link goes away after 4 MiB (a target that dies, or the link cut).
    ['link cut', (client, upstream) => {
      let seen = 0;
      client.on('data', (d: Buffer) => { seen += d.length; if (seen > 4 << 20) { upstream.destroy(); client.destroy(); } else upstream.write(d); });
      upstream.on('data', d => client.write(d));
    }, /connection closed|connection failed/],
  ];
  for (const [name, link, message] of faults) {
    const tgt = await target();
    const proxy = createServer(client => {
      const upstream = connect(tgt.port, '127.0.0.1');
      client.on('error', () => {});
      upstream.on('error', () => {});
      link(client, upstream);
    });
    await new Promise<void>(r => proxy.listen(0, '127.0.0.1', r));
    const sock = connect((proxy.address() as { port: number }).port, '127.0.0.1');
    await new Promise(r => sock.once('connect', r));
    const from = counts(src.out.text).length;
    await assert.rejects(migrateOut(src.m, sock, { token: TOKEN, spec: {}, timeoutMs: 10_000 }), message, name);
    await consoleOf(src.out).waitFor(new RegExp(`N=${counts(src.out.text).at(-1)! + 50}\\r\\n`));
    const seen = counts(src.out.text);
    assert.deepEqual(seen, Array.from({ length: seen.length }, (_, i) => i + 1), `${name}: the source counts on without a gap`);
    assert.ok(seen.length > from + 50, name);
    proxy.close();
    tgt.close();
  }
  // A wrong token is refused by the target.
  const tgt = await target();
  const sock = connect(tgt.port, '127.0.0.1');
  await new Promise(r => sock.once('connect', r));
  await assert.rejects(migrateOut(src.m, sock, { token: 'wrong', spec: {} }), /refused: Wrong migration token/);
  await assert.rejects(tgt.arrived, /Wrong migration token/);
  tgt.close();
});
