/**
 * Network benchmark: the bundled guest on a user-mode network in gasang (`--nic user,hostfwd=...`)
 * and in qemu-system-riscv64 -M virt (`-netdev user,hostfwd=...` + `-device virtio-net-device`,
 * libslirp), virtio-net over virtio-mmio on both, the guest at 10.0.2.15 by DHCP, 10.0.2.2 the
 * host's 127.0.0.1. In each boot, after a short warm-up:
 *   1. download host→guest: `wget -O /dev/null` of a blob from a Node http server in this process;
 *   2. upload guest→host: `dd if=/dev/zero bs=64k | nc` to a Node TCP sink counting bytes;
 *   3. download through a forwarded port: this process fetches a tmpfs file from the guest's busybox httpd;
 *   4. latency: `ping` of the gateway in the guest, and sequential HTTP requests (a new TCP connection
 *      each) from this process to the guest's httpd through the forwarded port.
 * Transfers 1 and 2 are timed in the guest (busybox `time`, 10 ms resolution) and by the host end;
 * 3 and 4 (requests) by this process. Results go to the `network` section of BENCHMARKS.md.
 *
 *   npm run bench:net  (= tsc -p . && node dist/bench/net.js)
 *   Env: BENCH_RUNS (boots per emulator, default 3), BENCH_DOWN_MIB (default 64), BENCH_UP_MIB (default 64),
 *        BENCH_FWD_MIB (default 32), BENCH_PINGS (default 20), BENCH_REQUESTS (default 200),
 *        BENCH_TIMEOUT (s per command, default 600)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, get, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  EMULATOR_TITLE, bootToShell, commandLine, emulatorCommand, hostFacts, loadText, stats,
  writeSection, type Boot, type ConsoleProcess, type Emulator, type Stats,
} from './lib.js';

const REPO = join(import.meta.dirname, '..', '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DOWN_MIB = Number(process.env.BENCH_DOWN_MIB ?? 64);
const UP_MIB = Number(process.env.BENCH_UP_MIB ?? 64);
const FWD_MIB = Number(process.env.BENCH_FWD_MIB ?? 32);
const PINGS = Number(process.env.BENCH_PINGS ?? 20);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT ?? 600) * 1000;
const EMULATORS: Emulator[] = ['jit', 'qemu'];
const MIB = 1048576;
const GUEST_PORT = 80;

const tmp = mkdtempSync(join(tmpdir(), 'gasang-bench-net-'));
const log = (s: string): void => void process.stderr.write(s);
const range = (s: Stats, f: (x: number) => string): string => `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
const portOf = (s: HttpServer | TcpServer): number => (s.address() as AddressInfo).port;

// ---- the host ends ----

/** What the host end saw of one transfer: bytes and seconds from its first event (request, connection) to its last (close, EOF). */
interface HostSide { bytes: number; seconds: number }

/** An http server on 127.0.0.1 serving `blob` at any path; `last` is the latest response's host-side figure. */
class BlobServer {
  readonly server: HttpServer;
  private readonly done = new Map<string, HostSide>();
  constructor(private readonly blob: Buffer) {
    this.server = createHttpServer((req, res) => {
      const t0 = performance.now();
      const sock = req.socket;
      const before = sock.bytesWritten;
      const tag = req.url ?? '/';
      // The transfer ends when the guest has read it all and closed its end (wget reads to EOF).
      sock.once('close', () => this.done.set(tag, { bytes: sock.bytesWritten - before, seconds: (performance.now() - t0) / 1000 }));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(this.blob.length), connection: 'close' });
      res.end(this.blob);
    });
  }
  async listen(): Promise<number> { await new Promise<void>(r => this.server.listen(0, '127.0.0.1', r)); return portOf(this.server); }
  /** The figure of the request for `path` (waits a little for the socket's close, which may follow the guest's exit). */
  async result(path: string): Promise<HostSide | undefined> {
    for (let i = 0; i < 50 && !this.done.has(path); i++) await new Promise(r => setTimeout(r, 100));
    return this.done.get(path);
  }
}

/** A TCP sink on 127.0.0.1: counts the bytes of each connection from accept to the peer's FIN. */
class Sink {
  readonly server: TcpServer;
  private readonly done: HostSide[] = [];
  constructor() {
    this.server = createTcpServer(sock => {
      const t0 = performance.now();
      let bytes = 0;
      sock.on('data', (d: Buffer) => { bytes += d.length; });
      sock.on('end', () => { this.done.push({ bytes, seconds: (performance.now() - t0) / 1000 }); sock.end(); });
      sock.on('error', () => {});
    });
  }
  async listen(): Promise<number> { await new Promise<void>(r => this.server.listen(0, '127.0.0.1', r)); return portOf(this.server); }
  /** The connections completed since `from` (an earlier count). */
  async results(from: number): Promise<HostSide[]> {
    for (let i = 0; i < 50 && this.done.length <= from; i++) await new Promise(r => setTimeout(r, 100));
    return this.done.slice(from);
  }
  get count(): number { return this.done.length; }
}

/** A free loopback port (bound, read and closed: the emulator binds it next). */
async function freePort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>(r => s.listen(0, '127.0.0.1', r));
  const p = portOf(s);
  await new Promise(r => s.close(r));
  return p;
}

/** One GET on a new connection (no keep-alive): status, body bytes and host seconds from the request to the body's end. */
function fetchOnce(port: number, path: string): Promise<{ status: number; bytes: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = get({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } }, (res: IncomingMessage) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => { bytes += d.length; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, seconds: (performance.now() - t0) / 1000 }));
      res.on('error', reject);
    });
    req.setTimeout(60_000, () => req.destroy(new Error(`GET 127.0.0.1:${port}${path}: no answer in 60 s`)));
    req.on('error', reject);
  });
}

// ---- the guest side ----

/** Seconds from busybox `time`'s `real` line (`real\t0m 3.32s`). */
function realSeconds(lines: string[]): number | undefined {
  for (const l of lines) {
    const m = /^real\s+(?:(\d+)h\s*)?(\d+)m\s*([\d.]+)s$/.exec(l.trim());
    if (m) return Number(m[1] ?? 0) * 3600 + Number(m[2]) * 60 + Number(m[3]);
  }
  return undefined;
}

/** Runs `cmd` in the guest and returns its output lines; throws when it fails. */
async function guest(p: ConsoleProcess, cmd: string, timeoutMs = TIMEOUT_MS): Promise<string[]> {
  const r = await p.run(cmd, timeoutMs);
  const lines = r.lines.map(l => l.text);
  if (r.status !== 0) throw new Error(`\`${cmd}\` exited with status ${r.status}; output:\n${lines.join('\n')}`);
  return lines;
}

// ---- the tests ----

type TestName = 'download' | 'upload' | 'fwd' | 'ping' | 'requests';
interface Test { name: TestName; title: string; unit: string; higherIsBetter: boolean; digits: number }
const TESTS: Test[] = [
  { name: 'download', title: `download host→guest: guest \`wget -O /dev/null\` of ${DOWN_MIB} MiB from a Node http server (guest-timed)`, unit: 'MiB/s', higherIsBetter: true, digits: 1 },
  { name: 'upload', title: `upload guest→host: guest \`dd if=/dev/zero bs=64k count=${UP_MIB * 16} | nc\` to a Node TCP sink (guest-timed)`, unit: 'MiB/s', higherIsBetter: true, digits: 1 },
  { name: 'fwd', title: `download through hostfwd: host GET of a ${FWD_MIB} MiB tmpfs file from the guest's busybox httpd (host-timed)`, unit: 'MiB/s', higherIsBetter: true, digits: 1 },
  { name: 'ping', title: `\`ping -c ${PINGS} -i 0.2 10.0.2.2\` in the guest, average round trip`, unit: 'ms', higherIsBetter: false, digits: 3 },
  { name: 'requests', title: `${REQUESTS} sequential HTTP GETs of a 3-byte file, host → guest httpd through hostfwd, a new TCP connection each`, unit: 'requests/s', higherIsBetter: true, digits: 0 },
];

/** One run's figure for a test, with details for the per-run list. */
interface Sample { value: number; detail: string }
interface Cell { runs: Sample[]; failures: string[] }

const urlPath = (e: Emulator, r: number, what: string): string => `/blob-${e}-${r}-${what}`;

async function main(): Promise<void> {
  const facts = hostFacts(REPO);
  // QEMU does not boot a gzip-compressed Image: it gets the same kernel uncompressed.
  const qemuKernel = join(tmp, 'Image');
  writeFileSync(qemuKernel, gunzipSync(readFileSync(join(REPO, 'guest/default/Image.gz'))));

  const blob = randomBytes(DOWN_MIB * MIB);
  const web = new BlobServer(blob);
  const webPort = await web.listen();
  const sink = new Sink();
  const sinkPort = await sink.listen();

  const cells = new Map<string, Cell>();
  const cell = (e: Emulator, t: TestName): Cell => {
    const k = `${e}/${t}`;
    if (!cells.has(k)) cells.set(k, { runs: [], failures: [] });
    return cells.get(k)!;
  };
  const boots = new Map<Emulator, Boot>();
  const bootFailures: string[] = [];
  const loads: string[] = [];

  const cmds = {
    lease: "for i in $(seq 300); do ip -4 addr show eth0 | grep -q 'inet 10.0.2.15/' && break; sleep 0.1; done; ip -4 addr show eth0 | grep -q 'inet 10.0.2.15/'",
    httpd: `mkdir -p /tmp/www && dd if=/dev/zero of=/tmp/www/blob bs=1M count=${FWD_MIB} 2>/dev/null && echo ok > /tmp/www/index.html && httpd -p ${GUEST_PORT} -h /tmp/www`,
    warmDown: `wget -q -O /dev/null http://10.0.2.2:${webPort}/warm`,
    warmUp: `dd if=/dev/zero bs=64k count=16 2>/dev/null | nc 10.0.2.2 ${sinkPort}`,
    download: (path: string): string => `time wget -q -O /dev/null http://10.0.2.2:${webPort}${path}`,
    upload: `time sh -c 'dd if=/dev/zero bs=64k count=${UP_MIB * 16} 2>/dev/null | nc 10.0.2.2 ${sinkPort}'`,
    ping: `ping -c ${PINGS} -i 0.2 10.0.2.2`,
  };

  log(`network bench: ${RUNS} runs; ${DOWN_MIB} MiB down, ${UP_MIB} MiB up, ${FWD_MIB} MiB through hostfwd, ${PINGS} pings, ${REQUESTS} requests; load average ${loadText(facts.loadAtStart)}\n`);
  for (let r = 1; r <= RUNS; r++) {
    for (const e of EMULATORS) {
      const fwdPort = await freePort();
      const boot: Boot = {
        firmware: 'guest/default/fw_jump.bin', kernel: e === 'qemu' ? qemuKernel : 'guest/default/Image.gz',
        initrd: 'guest/default/initramfs.cpio.gz', append: 'console=ttyS0', memoryMiB: 256,
        userNet: { hostfwd: [`tcp:127.0.0.1:${fwdPort}-:${GUEST_PORT}`] },
      };
      boots.set(e, boot);
      const load = loadavg();
      loads.push(`- run ${r}, ${EMULATOR_TITLE[e]}: load average ${loadText(load)} at boot`);
      log(`run ${r}/${RUNS} ${EMULATOR_TITLE[e]} (load ${loadText(load)}):`);
      let shell: ConsoleProcess | undefined;
      /** Runs one test, recording its figure or its failure; a failure ends this boot. */
      const measure = async (t: TestName, f: () => Promise<Sample>): Promise<void> => {
        try {
          const s = await f();
          cell(e, t).runs.push(s);
          const spec = TESTS.find(x => x.name === t)!;
          log(` ${t} ${s.value.toFixed(spec.digits)} ${spec.unit}`);
        } catch (err) {
          cell(e, t).failures.push(`run ${r}: ${(err as Error).message}`);
          throw err;
        }
      };
      try {
        shell = await bootToShell(e, boot, REPO, 600_000);
        await guest(shell, 'stty cols 1000');
        await guest(shell, cmds.lease, 60_000);
        await guest(shell, cmds.httpd);
        // Warm-up, untimed: a first download, upload and a few requests (translation caches, ARP, TCP slow start of the first flow).
        await guest(shell, cmds.warmDown);
        await guest(shell, cmds.warmUp);
        for (let i = 0; i < 5; i++) await fetchOnce(fwdPort, '/index.html');

        await measure('download', async () => {
          const path = urlPath(e, r, 'down');
          const lines = await guest(shell!, cmds.download(path));
          const secs = realSeconds(lines);
          const host = await web.result(path);
          if (secs === undefined) throw new Error(`no \`real\` line from time: ${lines.join(' | ')}`);
          if (!host || host.bytes < blob.length) throw new Error(`the server sent ${host?.bytes ?? 'no'} bytes of ${blob.length}`);
          const mibs = DOWN_MIB / secs;
          return { value: mibs, detail: `${mibs.toFixed(1)} MiB/s (guest ${secs.toFixed(2)} s; server ${host.seconds.toFixed(2)} s from request to close, ${(DOWN_MIB / host.seconds).toFixed(1)} MiB/s)` };
        });
        await measure('upload', async () => {
          const before = sink.count;
          const lines = await guest(shell!, cmds.upload);
          const secs = realSeconds(lines);
          const got = await sink.results(before);
          if (secs === undefined) throw new Error(`no \`real\` line from time: ${lines.join(' | ')}`);
          if (got.length !== 1 || got[0].bytes !== UP_MIB * MIB) throw new Error(`the sink got ${got.map(g => g.bytes).join(', ') || 'no connection'} (expected one of ${UP_MIB * MIB} bytes)`);
          const mibs = UP_MIB / secs;
          return { value: mibs, detail: `${mibs.toFixed(1)} MiB/s (guest ${secs.toFixed(2)} s; sink ${got[0].seconds.toFixed(2)} s from accept to EOF, ${(UP_MIB / got[0].seconds).toFixed(1)} MiB/s)` };
        });
        await measure('fwd', async () => {
          const got = await fetchOnce(fwdPort, '/blob');
          if (got.status !== 200 || got.bytes !== FWD_MIB * MIB) throw new Error(`GET /blob: status ${got.status}, ${got.bytes} bytes (expected ${FWD_MIB * MIB})`);
          const mibs = FWD_MIB / got.seconds;
          return { value: mibs, detail: `${mibs.toFixed(1)} MiB/s (${got.seconds.toFixed(2)} s)` };
        });
        await measure('ping', async () => {
          const lines = await guest(shell!, cmds.ping, 120_000);
          const text = lines.join('\n');
          const rtt = /round-trip min\/avg\/max = ([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(text);
          const loss = /(\d+) packets transmitted, (\d+) packets received/.exec(text);
          if (!rtt || !loss) throw new Error(`no ping summary: ${text}`);
          if (loss[2] !== String(PINGS)) throw new Error(`${loss[2]} of ${loss[1]} replies`);
          return { value: Number(rtt[2]), detail: `avg ${rtt[2]} ms (min ${rtt[1]}, max ${rtt[3]})` };
        });
        await measure('requests', async () => {
          const each: number[] = [];
          const t0 = performance.now();
          for (let i = 0; i < REQUESTS; i++) {
            const got = await fetchOnce(fwdPort, '/index.html');
            if (got.status !== 200 || got.bytes !== 3) throw new Error(`request ${i + 1}: status ${got.status}, ${got.bytes} bytes`);
            each.push(got.seconds * 1000);
          }
          const secs = (performance.now() - t0) / 1000;
          const s = stats(each);
          return { value: REQUESTS / secs, detail: `${(REQUESTS / secs).toFixed(0)}/s, ${(secs * 1000 / REQUESTS).toFixed(2)} ms each on average (median ${s.median.toFixed(2)}, min ${s.min.toFixed(2)}, max ${s.max.toFixed(2)} ms)` };
        });
      } catch (err) {
        if (!shell) bootFailures.push(`- run ${r}, ${EMULATOR_TITLE[e]}: boot failed: ${(err as Error).message}`);
        log(` FAILED: ${(err as Error).message.split('\n')[0]}`);
      } finally {
        await shell?.stop();
      }
      log('\n');
    }
  }
  const loadAtEnd = loadavg();
  web.server.close();
  sink.server.close();

  const out: string[] = [];
  out.push('## Network: virtio-net on a user-mode network (bench/net.ts)', '');
  out.push(`Measured ${facts.date} by \`npm run bench:net\` (\`node dist/bench/net.js\`, BENCH_RUNS=${RUNS}, BENCH_DOWN_MIB=${DOWN_MIB}, BENCH_UP_MIB=${UP_MIB}, ` +
    `BENCH_FWD_MIB=${FWD_MIB}, BENCH_PINGS=${PINGS}, BENCH_REQUESTS=${REQUESTS}).`,
    'The bundled guest (guest/default: Linux 6.1 with virtio-net built in, busybox 1.37), 256 MiB, one hart, one virtio-net card over virtio-mmio ' +
    'on a user-mode network: gasang `--nic user,hostfwd=…` (its own NAT, src/net/user) and QEMU `-netdev user,hostfwd=…` (libslirp) with ' +
    '`-device virtio-net-device` (on `-M virt`, `-nic user` would be a PCI card). Both give the guest 10.0.2.15 by DHCP; 10.0.2.2 is the host\'s ' +
    '127.0.0.1, where this benchmark\'s own Node servers listen (an http server with a random blob, a TCP sink counting bytes). ' +
    `gasang runs with its JIT (the default). A fresh boot for every run; the machines take turns (gasang, QEMU; repeated ${RUNS}×). ` +
    `After the DHCP lease, each boot warms up (untimed: one ${DOWN_MIB} MiB download, a 1 MiB upload, five requests), then measures in the order of the table. ` +
    'Transfers from the guest\'s shell are timed in the guest by busybox `time` (10 ms resolution; the host end\'s own timing is in the list below), ' +
    `those made by this process (hostfwd, requests) by this process. Median (min–max) of ${RUNS} run${RUNS === 1 ? '' : 's'}; MiB = 2^20 bytes.`, '');
  out.push(`- Host: ${facts.cpuModel}, ${facts.cores} cores (shared with other users); Node ${facts.node}; QEMU ${facts.qemu} (TCG, libslirp); gasang ${facts.commit}`);
  out.push(`- Load average at start: ${loadText(facts.loadAtStart)}; at end: ${loadText(loadAtEnd)} (at each boot: below)`);
  out.push('', '| test | gasang | QEMU | gasang / QEMU |', '|---|---|---|---|');
  const verdicts: string[] = [];
  let better = 0, compared = 0;
  for (const t of TESTS) {
    const g = cell('jit', t.name).runs.map(s => s.value), q = cell('qemu', t.name).runs.map(s => s.value);
    const show = (xs: number[]): string => xs.length ? `${range(stats(xs), x => x.toFixed(t.digits))} ${t.unit}` : 'failed';
    const x = g.length && q.length ? stats(g).median / stats(q).median : undefined;
    if (x !== undefined) {
      compared++;
      const ok = t.higherIsBetter ? x >= 1 : x <= 1;
      if (ok) better++;
      verdicts.push(`${t.name} ${x.toFixed(2)}×`);
    }
    out.push(`| ${t.title.replaceAll('|', '\\|')} (${t.higherIsBetter ? 'higher' : 'lower'} is better) | ${show(g)} | ${show(q)} | ${x !== undefined ? `${x.toFixed(2)}×` : '–'} |`);
  }
  const failures = [...bootFailures, ...[...cells.entries()].flatMap(([k, c]) => c.failures.map(f => `- ${k}: ${f}`))];
  out.push('', `**Summary:** gasang at least as good as QEMU on ${better} of ${compared} figures (${verdicts.join(', ')}; for ping, below 1× is better)` +
    (failures.length ? `; ${failures.length} failure${failures.length === 1 ? '' : 's'} (below)` : '') + '.');
  if (failures.length) out.push('', '### Failures', '', ...failures);

  out.push('', 'Every run:', '');
  for (const t of TESTS) {
    out.push(`- ${t.name}: ${EMULATORS.map(e => `${EMULATOR_TITLE[e]} ${cell(e, t.name).runs.map(s => s.detail).join('; ') || 'none'}`).join(' — ')}`);
  }
  out.push('', ...loads);

  out.push('', 'Commands (run from the repository root; DIR is a temporary directory, HOSTPORT a free loopback port, WEBPORT and SINKPORT the ' +
    'ports of this process\'s http server and TCP sink on 127.0.0.1):', '', '```sh',
    `# DIR/Image: guest/default/Image.gz uncompressed, for QEMU`);
  for (const e of EMULATORS) {
    const c = emulatorCommand(e, boots.get(e)!);
    out.push(commandLine(c.cmd, c.args).replaceAll(tmp, 'DIR').replace(/127\.0\.0\.1:\d+-:/, '127.0.0.1:HOSTPORT-:'));
  }
  const gen = (s: string): string => s.replaceAll(`:${webPort}`, ':WEBPORT').replaceAll(` ${sinkPort}`, ' SINKPORT');
  out.push('# then, at the guest shell, after GASANG-READY:', 'stty cols 1000', cmds.lease, cmds.httpd,
    '# warm-up', gen(cmds.warmDown), gen(cmds.warmUp), '# and 5 × GET http://127.0.0.1:HOSTPORT/index.html from the host',
    '# 1. download', gen(cmds.download('/blob')), '# 2. upload', gen(cmds.upload),
    '# 3. from the host: GET http://127.0.0.1:HOSTPORT/blob (Node http.get, no keep-alive)',
    '# 4. latency', cmds.ping, `# and from the host: ${REQUESTS} × GET http://127.0.0.1:HOSTPORT/index.html, one after the other, a new connection each`, '```');

  out.push('', 'What the numbers mean: every byte crosses the guest kernel\'s TCP stack and virtio-net driver (emulated RISC-V code: the JIT\'s ' +
    'or TCG\'s speed matters as much as the device model), the virtio queues, and the user-mode NAT that maps the guest\'s TCP flows onto host ' +
    'sockets (gasang\'s in TypeScript, QEMU\'s libslirp in C). A download is bounded by how fast the guest takes in and acknowledges frames, an ' +
    'upload by how fast it makes them: busybox `nc` copies about 1 KiB per read and write (the guest sends about one TCP segment, and gets one ' +
    'ACK and one interrupt, per KiB) while dd and nc take turns on a pipe, so the upload figures measure per-segment guest kernel work and context ' +
    'switches rather than bandwidth, and are low on both machines. The hostfwd download goes the other way through the NAT (the host connects, the guest\'s ' +
    'httpd sends). Ping and requests per second measure round trips: a request is a TCP handshake through the NAT, a fork of busybox httpd in ' +
    'the guest, the reply and the close — guest CPU and interrupt latency more than bandwidth.');
  const text = out.join('\n');
  writeSection(join(REPO, 'BENCHMARKS.md'), 'network', text);
  process.stdout.write(`${text}\n`);
}

try {
  await main();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
