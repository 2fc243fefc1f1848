import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Syscon, type PowerEvent } from './syscon.js';

test('finisher commands map to power events', () => {
  const events: [PowerEvent, number][] = [];
  const s = new Syscon({ onPower: (k, c) => events.push([k, c]) });
  s.write(0, 4, 0x5555);
  s.write(0, 4, 0x7777);
  s.write(0, 4, 0x3333 | (3 << 16));
  s.write(0, 4, 0x1234); // unknown: ignored
  s.write(4, 4, 0x5555); // other offsets: ignored
  assert.deepEqual(events, [['poweroff', 0], ['reboot', 0], ['fail', 3]]);
  assert.equal(s.read(0, 4), 0);
});
