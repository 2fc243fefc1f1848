import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pack } from './client-testing.js';
import { ROOT, withShare } from './testing.js';

const MSIZE = 512 * 1024;
const FILE_SIZE = 64 * 1024 * 1024;

it('reads a 64 MiB host file through Tread at msize 512 KiB, byte for byte', t => {
  withShare({ prefix: 'gasang-9p-tp-', readOnly: true, msize: MSIZE, responseSize: MSIZE }, (share) => {
    const { root, server } = share;
    const fd = openSync(join(root, 'big'), 'w');
    const host = createHash('sha256');
    for (let i = 0; i < FILE_SIZE / (1 << 20); i++) {
      const chunk = randomBytes(1 << 20);
      host.update(chunk);
      writeSync(fd, chunk);
    }
    closeSync(fd);
    const c = share.attach(); // msize: the 512 KiB response buffer
    c.walk(ROOT, 1, ['big']);
    c.lopen(1, 0);
    // As Linux does: count = msize - 24 (P9_IOHDRSZ), one request buffer reused for every Tread.
    const count = MSIZE - 24;
    const request = pack(116, 1, 'dqd', [1, 0, count]);
    const offsetView = new DataView(request.buffer);
    const readAll = (hash: ReturnType<typeof createHash> | null): number => {
      let offset = 0;
      for (;;) {
        offsetView.setUint32(11, offset % 2 ** 32, true);
        offsetView.setUint32(15, Math.floor(offset / 2 ** 32), true);
        const n = server.handle(request, c.response);
        assert.equal(c.response[4], 117);
        const got = new DataView(c.response.buffer).getUint32(7, true);
        if (got === 0) return offset;
        assert.equal(n, 11 + got);
        hash?.update(c.response.subarray(11, 11 + got));
        offset += got;
      }
    };
    const guest = createHash('sha256');
    assert.equal(readAll(guest), FILE_SIZE);
    assert.equal(guest.digest('hex'), host.digest('hex'));
    const runs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const start = process.hrtime.bigint();
      readAll(null);
      runs.push(FILE_SIZE / 1e6 / (Number(process.hrtime.bigint() - start) / 1e9));
    }
    t.diagnostic(`64 MiB through Tread, msize 512 KiB (page cache warm): ${runs.map(r => r.toFixed(0)).join(', ')} MB/s`);
  });
});
