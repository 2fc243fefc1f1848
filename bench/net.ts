/**
 * Network benchmark: Debian's kernel with the bench initramfs (bench/workloads/tcp.c in /bench) on
 * a user-mode network in gasang (`--nic user,hostfwd=...`) and in qemu-system-riscv64 -M virt
 * (`-netdev user,hostfwd=...` + `-device virtio-net-device`, libslirp), virtio-net over
 * virtio-mmio on both, the guest at 10.0.2.15 by DHCP, 10.0.2.2 the host's 127.0.0.1. In each
 * boot, after a short warm-up:
 *   1. download host→guest: `wget -O /dev/null` of a blob from a Node http server in this process;
 *   2. upload guest→host: `/bench/tcp send` to a Node TCP sink counting bytes;
 *   3. download through a forwarded port: this process fetches a tmpfs file from the guest's busybox httpd;
 *   4. latency: `ping` of the gateway in the guest, and sequential HTTP requests (a new TCP connection
 *      each) from this process to the guest's httpd through the forwarded port.
 * Then, VM to VM: two guests on one L2 segment — two gasang VMs on a network of gasangd's host (run
 * in this process, each VM in its worker, as in the daemon) and two QEMUs joined by `-netdev
 * socket` — one `/bench/tcp serve`s, the other `/bench/tcp recv`s, then pings it.
 * Transfers are timed in the guest (busybox `time` for wget, the BENCH line of tcp) and checked by
 * the host end's byte count; hostfwd and requests are timed by this process. Results go to the
 * `network` section of BENCHMARKS.md.
 *
 *   npm run bench:net  (= tsc -p . && node dist/bench/net.js)
 *   Env: BENCH_RUNS (boots per emulator, default 3), BENCH_DOWN_MIB (default 256), BENCH_UP_MIB (default 256),
 *        BENCH_FWD_MIB (default 32), BENCH_VM_MIB (default 256), BENCH_PINGS (default 20),
 *        BENCH_REQUESTS (default 200), BENCH_TIMEOUT (s per command, default 600)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, get, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EMULATOR_TITLE, LineConsole, benchInitramfs, bootToShell, commandLine, debianKernel, emulatorCommand, hostFacts, loadText,
  parseBenchLine, stats, writeSection, ConsoleProcess, VmConsole, type Boot, type BenchLine, type Emulator, type Stats,
} from './lib.js';
import { Host } from '../src/vm/host.js';
import { freePort } from '../src/vm/testing.js';

const REPO = join(import.meta.dirname, '..', '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DOWN_MIB = Number(process.env.BENCH_DOWN_MIB ?? 256);
const UP_MIB = Number(process.env.BENCH_UP_MIB ?? 256);
const FWD_MIB = Number(process.env.BENCH_FWD_MIB ?? 32);
const VM_MIB = Number(process.env.BENCH_VM_MIB ?? 256);
const PINGS = Number(process.env.BENCH_PINGS ?? 20);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT ?? 600) * 1000;
const EMULATORS: Emulator[] = ['jit', 'qemu'];
const MIB = 1048576;
const WARM_MIB = 16;
const GUEST_PORT = 80;
const VM_PORT = 5001;
/**
 * The two guests of the VM-to-VM tests. On gasang's network they take the gateway's DHCP leases
 * (the switch then holds each port to its address); QEMU's socket link has no DHCP: static ones.
 */
const PEERS = [{ name: 'peer-a', ip: '10.0.9.11', mac: '52:54:00:00:09:11' }, { name: 'peer-b', ip: '10.0.9.12', mac: '52:54:00:00:09:12' }] as const;

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
      const body = tag.startsWith('/warm') ? this.blob.subarray(0, WARM_MIB * MIB) : this.blob;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length), connection: 'close' });
      res.end(body);
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

/** A gasang VM's console (a VM of the in-process Host) as lines. */
/** Seconds from busybox `time`'s `real` line (`real\t0m 3.32s`). */
function realSeconds(lines: string[]): number | undefined {
  for (const l of lines) {
    const m = /^real\s+(?:(\d+)h\s*)?(\d+)m\s*([\d.]+)s$/.exec(l.trim());
    if (m) return Number(m[1] ?? 0) * 3600 + Number(m[2]) * 60 + Number(m[3]);
  }
  return undefined;
}

/** Runs `cmd` in the guest and returns its output lines; throws when it fails. */
async function guest(p: LineConsole, cmd: string, timeoutMs = TIMEOUT_MS): Promise<string[]> {
  const r = await p.run(cmd, timeoutMs);
  const lines = r.lines.map(l => l.text);
  if (r.status !== 0) throw new Error(`\`${cmd}\` exited with status ${r.status}; output:\n${lines.join('\n')}`);
  return lines;
}

/** The BENCH line named `name` among `lines`, with the byte count it must report. */
function benchLine(lines: string[], name: string, bytes: number): BenchLine {
  const b = lines.map(parseBenchLine).find(x => x?.name === name);
  if (!b) throw new Error(`no BENCH ${name} line: ${lines.join(' | ')}`);
  if (Number(b.fields.bytes) !== bytes) throw new Error(`${name} moved ${b.fields.bytes} bytes, not ${bytes}`);
  return b;
}

/** Average round trip of a busybox ping summary; throws unless every echo came back. */
function pingAverage(lines: string[]): Sample {
  const text = lines.join('\n');
  const rtt = /round-trip min\/avg\/max = ([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(text);
  const loss = /(\d+) packets transmitted, (\d+) packets received/.exec(text);
  if (!rtt || !loss) throw new Error(`no ping summary: ${text}`);
  if (loss[2] !== String(PINGS)) throw new Error(`${loss[2]} of ${loss[1]} replies`);
  return { value: Number(rtt[2]), detail: `avg ${rtt[2]} ms (min ${rtt[1]}, max ${rtt[3]})` };
}

// ---- the tests ----

type TestName = 'download' | 'upload' | 'fwd' | 'ping' | 'requests' | 'vm2vm' | 'vmping';
interface Test { name: TestName; title: string; unit: string; higherIsBetter: boolean; digits: number }
const TESTS: Test[] = [
  { name: 'download', title: `download host→guest: guest \`wget -O /dev/null\` of ${DOWN_MIB} MiB from a Node http server (guest-timed)`, unit: 'MiB/s', higherIsBetter: true, digits: 1 },
  { name: 'upload', title: `upload guest→host: guest \`/bench/tcp send\` of ${UP_MIB} MiB to a Node TCP sink (guest-timed)`, unit: 'MiB/s', higherIsBetter: true, digits: 1 },
  { name: 'fwd', title: `download through hostfwd: host GET of a ${FWD_MIB} MiB tmpfs file from the guest's busybox httpd (host-timed)`, unit: 'MiB/s', higherIsBetter: true, digits: 1 },
  { name: 'ping', title: `\`ping -c ${PINGS} -i 0.2 10.0.2.2\` in the guest, average round trip`, unit: 'ms', higherIsBetter: false, digits: 3 },
  { name: 'requests', title: `${REQUESTS} sequential HTTP GETs of a 3-byte file, host → guest httpd through hostfwd, a new TCP connection each`, unit: 'requests/s', higherIsBetter: true, digits: 0 },
  { name: 'vm2vm', title: `VM→VM: \`/bench/tcp serve\` of ${VM_MIB} MiB in one guest, \`/bench/tcp recv\` in the other (receiver-timed); gasang network vs QEMU \`-netdev socket\``, unit: 'MiB/s', higherIsBetter: true, digits: 1 },
  { name: 'vmping', title: `VM→VM: \`ping -c ${PINGS} -i 0.2\` of the other guest, average round trip`, unit: 'ms', higherIsBetter: false, digits: 3 },
];

/** One run's figure for a test, with details for the per-run list. */
interface Sample { value: number; detail: string }
interface Cell { runs: Sample[]; failures: string[] }

const urlPath = (e: Emulator, r: number, what: string): string => `/blob-${e}-${r}-${what}`;

/** Guest commands of the VM-to-VM tests: a static address (udhcpc stopped) or the lease, the server in the background. */
const peerCmds = {
  address: (ip: string): string => `killall udhcpc 2>/dev/null; ip addr flush dev eth0; ip addr add ${ip}/24 dev eth0 && ip link set eth0 up`,
  lease: 'for i in $(seq 300); do ip -4 addr show eth0 | grep -q "inet " && break; sleep 0.1; done; echo LEASE=$(ip -4 addr show eth0 | grep -o "inet [0-9.]*" | cut -d" " -f2)',
  reach: (ip: string): string => `for i in $(seq 100); do ping -c 1 -W 1 ${ip} >/dev/null && break; done; ping -c 1 -W 1 ${ip} >/dev/null`,
  serve: `/bench/tcp serve ${VM_PORT} ${VM_MIB} > /tmp/serve.out 2>&1 & for i in $(seq 100); do grep -q LISTENING /tmp/serve.out && break; sleep 0.1; done; grep -q LISTENING /tmp/serve.out`,
  recv: (ip: string): string => `/bench/tcp recv ${ip} ${VM_PORT}`,
  ping: (ip: string): string => `ping -c ${PINGS} -i 0.2 ${ip}`,
};

/** Two booted guests on one L2 segment, each with its address on it, and how to end them. */
interface Pair { consoles: [LineConsole, LineConsole]; ips: [string, string]; stop(): Promise<void> }

/** Sets up the console of a booted peer and gives it its address: `ip` (static), or its DHCP lease. */
async function addressPeer(c: LineConsole, ip?: string): Promise<string> {
  await guest(c, 'stty cols 1000');
  if (ip) { await guest(c, peerCmds.address(ip)); return ip; }
  const got = /^LEASE=(\d+\.\d+\.\d+\.\d+)$/.exec((await guest(c, peerCmds.lease, 60_000)).find(l => l.startsWith('LEASE=')) ?? '');
  if (!got) throw new Error('no DHCP lease on eth0');
  return got[1]!;
}

/** Two gasang VMs on a network of an in-process Host (as gasangd runs them: a worker each, the switch in this thread). */
async function gasangPair(boot: Boot, stateDir: string): Promise<Pair> {
  const host = new Host({ stateDir });
  const cons: VmConsole[] = [];
  const stop = async (): Promise<void> => { for (const c of cons) c.detach(); await host.close({ timeoutMs: 1000 }); };
  try {
    await host.createNetwork({ name: 'bench', subnet: '10.0.9.0/24', nat: false });
    for (const p of PEERS) {
      const vm = await host.create({
        name: p.name, kernel: boot.kernel, initrd: boot.initrd, firmware: join(REPO, boot.firmware), append: boot.append, memoryMiB: boot.memoryMiB,
        cpus: 1, jit: true, nics: [{ type: 'network', network: 'bench', mac: p.mac }],
      });
      await vm.start();
      cons.push(new VmConsole(vm, p.name));
    }
    await Promise.all(cons.map(c => c.waitForLine(/^GASANG-READY$/, 600_000)));
    const ips: [string, string] = [await addressPeer(cons[0]!), await addressPeer(cons[1]!)];
    return { consoles: [cons[0]!, cons[1]!], ips, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** QEMU's arguments for peer `i`: the Boot's machine with its card on a socket link (peer 0 listens, peer 1 connects). */
function qemuPeerCommand(boot: Boot, i: number, linkPort: number): { cmd: string; args: string[] } {
  const c = emulatorCommand('qemu', boot);
  return { cmd: c.cmd, args: [...c.args, '-netdev', `socket,id=n0,${i === 0 ? 'listen' : 'connect'}=127.0.0.1:${linkPort}`, '-device', `virtio-net-device,netdev=n0,mac=${PEERS[i].mac}`] };
}

/** Two QEMUs joined by `-netdev socket` (QEMU's own VM-to-VM link: frames over one TCP connection). */
async function qemuPair(boot: Boot, linkPort: number): Promise<Pair> {
  const procs: ConsoleProcess[] = [];
  const stop = async (): Promise<void> => { await Promise.all(procs.map(p => p.stop())); };
  try {
    for (let i = 0; i < 2; i++) {
      const c = qemuPeerCommand(boot, i, linkPort);
      procs.push(new ConsoleProcess(c.cmd, c.args, { cwd: REPO }));
      // The listener must be up before the other connects: it is once its firmware prints.
      if (i === 0) await procs[0].waitForLine(/OpenSBI|Linux version/, 60_000);
    }
    await Promise.all(procs.map(p => p.waitForLine(/^GASANG-READY$/, 600_000)));
    const ips: [string, string] = [await addressPeer(procs[0]!, PEERS[0].ip), await addressPeer(procs[1]!, PEERS[1].ip)];
    return { consoles: [procs[0]!, procs[1]!], ips, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function main(): Promise<void> {
  const facts = hostFacts(REPO);
  const debian = debianKernel();
  const boot0: Boot = { firmware: 'guest/default/fw_jump.bin', kernel: debian.kernel, initrd: benchInitramfs(REPO), append: 'console=ttyS0 gasang.modules=1', memoryMiB: 256 };

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
  let qemuLinkPort = 0;

  const cmds = {
    lease: "for i in $(seq 300); do ip -4 addr show eth0 | grep -q 'inet 10.0.2.15/' && break; sleep 0.1; done; ip -4 addr show eth0 | grep -q 'inet 10.0.2.15/'",
    httpd: `mkdir -p /tmp/www && dd if=/dev/zero of=/tmp/www/blob bs=1M count=${FWD_MIB} 2>/dev/null && echo ok > /tmp/www/index.html && httpd -p ${GUEST_PORT} -h /tmp/www`,
    warmDown: `wget -q -O /dev/null http://10.0.2.2:${webPort}/warm`,
    warmUp: `/bench/tcp send 10.0.2.2 ${sinkPort} ${WARM_MIB}`,
    download: (path: string): string => `time wget -q -O /dev/null http://10.0.2.2:${webPort}${path}`,
    upload: `/bench/tcp send 10.0.2.2 ${sinkPort} ${UP_MIB}`,
    ping: `ping -c ${PINGS} -i 0.2 10.0.2.2`,
  };

  /** Runs one test, recording its figure or its failure; a failure is rethrown (it ends that boot). */
  const measure = async (e: Emulator, r: number, t: TestName, f: () => Promise<Sample>): Promise<void> => {
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

  log(`network bench: ${RUNS} runs; ${DOWN_MIB} MiB down, ${UP_MIB} MiB up, ${FWD_MIB} MiB through hostfwd, ${VM_MIB} MiB VM to VM, ${PINGS} pings, ${REQUESTS} requests; load average ${loadText(facts.loadAtStart)}\n`);
  for (let r = 1; r <= RUNS; r++) {
    for (const e of EMULATORS) {
      const fwdPort = await freePort();
      const boot: Boot = { ...boot0, userNet: { hostfwd: [`tcp:127.0.0.1:${fwdPort}-:${GUEST_PORT}`] } };
      boots.set(e, boot);
      const load = loadavg();
      loads.push(`- run ${r}, ${EMULATOR_TITLE[e]}, one VM: load average ${loadText(load)} at boot`);
      log(`run ${r}/${RUNS} ${EMULATOR_TITLE[e]} (load ${loadText(load)}):`);
      let shell: ConsoleProcess | undefined;
      try {
        shell = await bootToShell(e, boot, REPO, 600_000);
        await guest(shell, 'stty cols 1000');
        await guest(shell, cmds.lease, 60_000);
        await guest(shell, cmds.httpd);
        // Warm-up, untimed: a first download, upload and a few requests (translation caches, ARP, TCP slow start of the first flow).
        await guest(shell, cmds.warmDown);
        await guest(shell, cmds.warmUp);
        for (let i = 0; i < 5; i++) await fetchOnce(fwdPort, '/index.html');

        await measure(e, r, 'download', async () => {
          const path = urlPath(e, r, 'down');
          const lines = await guest(shell!, cmds.download(path));
          const secs = realSeconds(lines);
          const host = await web.result(path);
          if (secs === undefined) throw new Error(`no \`real\` line from time: ${lines.join(' | ')}`);
          if (!host || host.bytes < blob.length) throw new Error(`the server sent ${host?.bytes ?? 'no'} bytes of ${blob.length}`);
          const mibs = DOWN_MIB / secs;
          return { value: mibs, detail: `${mibs.toFixed(1)} MiB/s (guest ${secs.toFixed(2)} s; server ${host.seconds.toFixed(2)} s from request to close, ${(DOWN_MIB / host.seconds).toFixed(1)} MiB/s)` };
        });
        await measure(e, r, 'upload', async () => {
          const before = sink.count;
          const b = benchLine(await guest(shell!, cmds.upload), 'tcp-send', UP_MIB * MIB);
          const got = await sink.results(before);
          if (got.length !== 1 || got[0].bytes !== UP_MIB * MIB) throw new Error(`the sink got ${got.map(g => g.bytes).join(', ') || 'no connection'} (expected one of ${UP_MIB * MIB} bytes)`);
          const mibs = UP_MIB / b.guestSeconds;
          return { value: mibs, detail: `${mibs.toFixed(1)} MiB/s (guest ${b.guestSeconds.toFixed(2)} s; sink ${got[0].seconds.toFixed(2)} s from accept to EOF, ${(UP_MIB / got[0].seconds).toFixed(1)} MiB/s)` };
        });
        await measure(e, r, 'fwd', async () => {
          const got = await fetchOnce(fwdPort, '/blob');
          if (got.status !== 200 || got.bytes !== FWD_MIB * MIB) throw new Error(`GET /blob: status ${got.status}, ${got.bytes} bytes (expected ${FWD_MIB * MIB})`);
          const mibs = FWD_MIB / got.seconds;
          return { value: mibs, detail: `${mibs.toFixed(1)} MiB/s (${got.seconds.toFixed(2)} s)` };
        });
        await measure(e, r, 'ping', async () => pingAverage(await guest(shell!, cmds.ping, 120_000)));
        await measure(e, r, 'requests', async () => {
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
    for (const e of EMULATORS) {
      const load = loadavg();
      loads.push(`- run ${r}, ${EMULATOR_TITLE[e]}, two VMs: load average ${loadText(load)} at boot`);
      log(`run ${r}/${RUNS} ${EMULATOR_TITLE[e]}, VM to VM (load ${loadText(load)}):`);
      let pair: Pair | undefined;
      try {
        if (e === 'qemu') qemuLinkPort = await freePort();
        pair = e === 'qemu' ? await qemuPair(boot0, qemuLinkPort) : await gasangPair(boot0, join(tmp, `state-${r}`));
        const [a, b] = pair.consoles;
        const server = pair.ips[1];
        await guest(a, peerCmds.reach(server), 120_000);
        // Warm-up, untimed: a first transfer of WARM_MIB.
        await guest(b, peerCmds.serve.replace(` ${VM_MIB} `, ` ${WARM_MIB} `));
        await guest(a, peerCmds.recv(server));
        await measure(e, r, 'vm2vm', async () => {
          await guest(b, peerCmds.serve);
          const got = benchLine(await guest(a, peerCmds.recv(server)), 'tcp-recv', VM_MIB * MIB);
          const mibs = VM_MIB / got.guestSeconds;
          return { value: mibs, detail: `${mibs.toFixed(1)} MiB/s (receiver ${got.guestSeconds.toFixed(2)} s)` };
        });
        await measure(e, r, 'vmping', async () => pingAverage(await guest(a, peerCmds.ping(server), 120_000)));
      } catch (err) {
        if (!pair) bootFailures.push(`- run ${r}, ${EMULATOR_TITLE[e]}, two VMs: boot failed: ${(err as Error).message}`);
        log(` FAILED: ${(err as Error).message.split('\n')[0]}`);
      } finally {
        await pair?.stop();
      }
      log('\n');
    }
  }
  const loadAtEnd = loadavg();
  web.server.close();
  sink.server.close();

  const out: string[] = [];
  out.push('## Network: virtio-net on a user-mode network and VM to VM (bench/net.ts)', '');
  out.push(`Measured ${facts.date} by \`npm run bench:net\` (\`node dist/bench/net.js\`, BENCH_RUNS=${RUNS}, BENCH_DOWN_MIB=${DOWN_MIB}, BENCH_UP_MIB=${UP_MIB}, ` +
    `BENCH_FWD_MIB=${FWD_MIB}, BENCH_VM_MIB=${VM_MIB}, BENCH_PINGS=${PINGS}, BENCH_REQUESTS=${REQUESTS}).`,
    `Debian's kernel (${debian.release}; \`gasang.modules=1\` loads virtio_net from its initramfs) with the bench initramfs (busybox and bench/workloads/tcp.c as /bench/tcp), ` +
    '256 MiB, one hart, virtio-net over virtio-mmio on both machines. One VM on a user-mode network: gasang `--nic user,hostfwd=…` (its own NAT, src/net/user) ' +
    'and QEMU `-netdev user,hostfwd=…` (libslirp) with `-device virtio-net-device` (on `-M virt`, `-nic user` would be a PCI card). Both give the guest ' +
    '10.0.2.15 by DHCP; 10.0.2.2 is the host\'s 127.0.0.1, where this benchmark\'s own Node servers listen (an http server with a random blob, a TCP sink ' +
    'counting bytes). VM to VM: two gasang VMs on one network of gasangd\'s host (src/vm/host.ts run in this process as the daemon runs it: each VM in its ' +
    'worker, frames through shared-memory rings to the switch in the main thread) beside two QEMUs joined by `-netdev socket` (QEMU\'s VM-to-VM link: ' +
    'frames over one loopback TCP connection), the gasang guests with the DHCP leases of their network\'s gateway (the switch then holds each port to its address), the QEMU guests at 10.0.9.11 and .12 set by hand (no DHCP on a socket link). ' +
    `gasang runs with its JIT (the default). Fresh boots for every run; the machines take turns (gasang, QEMU; one VM, then two; repeated ${RUNS}×). ` +
    `Each boot warms up (untimed: a ${WARM_MIB} MiB download and upload or VM-to-VM transfer, five requests), then measures in the order of the table. ` +
    'wget is timed in the guest by busybox `time` (10 ms resolution), /bench/tcp by its own clock from its first read or write to the end ' +
    '(the host end\'s own timing is in the list below); hostfwd and requests by this process. ' +
    `Median (min–max) of ${RUNS} run${RUNS === 1 ? '' : 's'}; MiB = 2^20 bytes.`, '');
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
  out.push('', `**Summary:** gasang at least as good as QEMU on ${better} of ${compared} figures (${verdicts.join(', ')}; for the pings, below 1× is better)` +
    (failures.length ? `; ${failures.length} failure${failures.length === 1 ? '' : 's'} (below)` : '') + '.');
  if (failures.length) out.push('', '### Failures', '', ...failures);

  out.push('', 'Every run:', '');
  for (const t of TESTS) {
    out.push(`- ${t.name}: ${EMULATORS.map(e => `${EMULATOR_TITLE[e]} ${cell(e, t.name).runs.map(s => s.detail).join('; ') || 'none'}`).join(' — ')}`);
  }
  out.push('', ...loads);

  const gen = (s: string): string => s.replaceAll(`:${webPort}`, ':WEBPORT').replaceAll(` ${sinkPort} `, ' SINKPORT ').replaceAll(REPO + '/', '').replaceAll(debian.kernel, 'DEBIAN/vmlinux')
    .replaceAll(boot0.initrd, 'BENCH/initramfs.cpio.gz');
  out.push('', 'Commands (run from the repository root; DEBIAN is the Debian guest of scripts/fetch-debian-guest.sh, BENCH/initramfs.cpio.gz what ' +
    'scripts/build-bench-guest.sh prints, HOSTPORT and LINKPORT free loopback ports, WEBPORT and SINKPORT the ports of this process\'s http server and ' +
    'TCP sink on 127.0.0.1):', '', '```sh', '# one VM');
  for (const e of EMULATORS) {
    const c = emulatorCommand(e, boots.get(e)!);
    out.push(gen(commandLine(c.cmd, c.args)).replace(/127\.0\.0\.1:\d+-:/, '127.0.0.1:HOSTPORT-:'));
  }
  out.push('# then, at the guest shell, after GASANG-READY:', 'stty cols 1000', cmds.lease, cmds.httpd,
    '# warm-up', gen(cmds.warmDown), gen(cmds.warmUp), '# and 5 × GET http://127.0.0.1:HOSTPORT/index.html from the host',
    '# 1. download', gen(cmds.download('/blob')), '# 2. upload', gen(cmds.upload),
    '# 3. from the host: GET http://127.0.0.1:HOSTPORT/blob (Node http.get, no keep-alive)',
    '# 4. latency', cmds.ping, `# and from the host: ${REQUESTS} × GET http://127.0.0.1:HOSTPORT/index.html, one after the other, a new connection each`,
    '# VM to VM, gasang (what this benchmark does through src/vm/host.ts, as with gasangd and its CLI):',
    'gasang net create bench --subnet 10.0.9.0/24 --nat off',
    ...PEERS.map(p => gen(`gasang vm create --name ${p.name} --kernel ${debian.kernel} --initrd ${boot0.initrd} --firmware ${boot0.firmware} --append '${boot0.append}' --memory 256 --cpus 1 --nic network=bench,mac=${p.mac} --start`)),
    '# then in both guests: their DHCP leases (SERVER is peer-b\'s)', 'stty cols 1000', peerCmds.lease,
    '# VM to VM, QEMU (the first listens, the second connects):',
    ...[0, 1].map(i => { const c = qemuPeerCommand(boot0, i, 0); return gen(commandLine(c.cmd, c.args)).replace(/127\.0\.0\.1:0\b/, '127.0.0.1:LINKPORT'); }),
    `# then in both guests (${PEERS[0].ip} in ${PEERS[0].name}, SERVER=${PEERS[1].ip} in ${PEERS[1].name}):`, 'stty cols 1000', peerCmds.address('IP'),
    `# then, on both machines, in ${PEERS[1].name}:`, peerCmds.serve, `# in ${PEERS[0].name}:`, peerCmds.reach('SERVER'), peerCmds.recv('SERVER'), peerCmds.ping('SERVER'), '```');

  out.push('', 'What the numbers mean: every byte crosses the guest kernel\'s TCP stack and virtio-net driver (emulated RISC-V code: the JIT\'s ' +
    'or TCG\'s speed matters as much as the device model), the virtio queues, and, for one VM, the user-mode NAT that maps the guest\'s TCP flows onto host ' +
    'sockets (gasang\'s in TypeScript, QEMU\'s libslirp in C); VM to VM, gasang\'s switch or QEMU\'s socket link. A download is bounded by how fast the ' +
    'guest takes in and acknowledges frames, an upload by how fast it makes them; /bench/tcp moves 64 KiB per system call (busybox `nc` copies 1 KiB ' +
    'per read and write, which measures the guest\'s system calls rather than the network). The hostfwd download goes the other way through the NAT (the ' +
    'host connects, the guest\'s httpd sends). Ping and requests per second measure round trips: a request is a TCP handshake through the NAT, a fork of ' +
    'busybox httpd in the guest, the reply and the close — guest CPU and interrupt latency more than bandwidth.');
  const text = out.join('\n');
  writeSection(join(REPO, 'BENCHMARKS.md'), 'network', text);
  process.stdout.write(`${text}\n`);
}

try {
  await main();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
