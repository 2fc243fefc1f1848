import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reg } from '../mmio.js';
import { TestDriver } from '../testing.js';
import { CONSOLE_INPUT_LIMIT, VirtioConsole } from './device.js';

function setup() {
  const out: string[] = [];
  const con = new VirtioConsole({ output: b => out.push(Buffer.from(b).toString('latin1')) });
  const d = new TestDriver(con);
  return { d, con, out };
}

test('virtio-console: device id 3, two queues; transmitq buffers reach the sink as copies', () => {
  const { d, out } = setup();
  assert.equal(d.reg(Reg.DEVICE_ID), 3);
  d.init();
  assert.equal(d.queues.length, 2);
  const a = d.alloc(6, Buffer.from('hello ')), b = d.alloc(6, Buffer.from('world\n'));
  d.submit(1, [{ addr: a, len: 6 }, { addr: b, len: 6 }]);
  d.kick(1);
  assert.deepEqual(out, ['hello world\n']);
  assert.deepEqual(d.takeUsed(1), [{ id: 0, len: 0 }]);
  d.mem.write(a, Buffer.from('XXXXXX'));
  assert.deepEqual(out, ['hello world\n'], 'the sink got a copy');
});

test('virtio-console: host input waits for receive buffers, then fills them in order', () => {
  const { d, con } = setup();
  con.input(Buffer.from('early'));
  d.init();
  const r1 = d.alloc(3), r2 = d.alloc(16);
  d.submit(0, [{ addr: r1, len: 3, write: true }]);
  d.submit(0, [{ addr: r2, len: 16, write: true }]);
  d.kick(0);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 3 }, { id: 1, len: 2 }]);
  assert.equal(Buffer.from(d.bytes(r1, 3)).toString(), 'ear');
  assert.equal(Buffer.from(d.bytes(r2, 2)).toString(), 'ly');
  d.ack();
  const r3 = d.alloc(16);
  d.submit(0, [{ addr: r3, len: 16, write: true }]);
  d.kick(0);
  assert.equal(d.takeUsed(0).length, 0, 'nothing to deliver: the buffer stays available');
  con.input(Buffer.from('ls\n'));
  assert.deepEqual(d.takeUsed(0), [{ id: 2, len: 3 }]);
  assert.equal(d.irq, true, 'input raised the interrupt');
});

test('virtio-console: input beyond the limit is dropped and counted', () => {
  const { con } = setup();
  con.input(new Uint8Array(CONSOLE_INPUT_LIMIT - 10));
  con.input(new Uint8Array(30));
  assert.equal(con.dropped, 20);
  assert.equal((con.save().pending).length, CONSOLE_INPUT_LIMIT);
});
