/**
 * `gasang image`: create, inspect, check, snapshot and commit disk images (raw and qcow2), in
 * the manner of qemu-img. User mistakes are InputErrors (one line, exit status 2).
 */
import { InputError } from '../util/errors.js';
import { StorageError } from '../storage/block.js';
import {
  applySnapshot, checkImage, commitImage, createOverlay, createQcow2, createRaw, createSnapshot, deleteSnapshot,
  imageInfo, listSnapshots, openQcow2, probeFormat, resolveBacking, type CheckResult, type ImageInfo, type SnapshotInfo,
} from '../storage/index.js';

export const IMAGE_USAGE = `Usage: gasang image <command> [options]

Commands:
  create [-f qcow2|raw] [-b BACKING [-F raw|qcow2]] [-o cluster_size=SIZE] FILE [SIZE]
          make an image (qcow2 unless -f raw); SIZE takes K, M, G, T suffixes and defaults
          to the backing file's size; a relative BACKING is relative to FILE's directory
  info [--output=json] FILE
          format, virtual and disk size, cluster size, snapshots and the backing chain
  check [--output=json] FILE
          check a qcow2 image's metadata; exit status 0 clean, 3 leaked clusters only,
          4 corruption
  snapshot -l FILE | snapshot -c|-a|-d NAME FILE
          list, create, apply (revert to) or delete an internal snapshot
  commit [-d] FILE
          write FILE's data into its backing file, then empty FILE (-d: leave it as it is)
`;

export interface ImageIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Draw a progress bar on the error stream (it is a terminal). */
  progress: boolean;
}

const bad = (message: string): InputError => new InputError('bad-option', message);

/** Runs `gasang image …` (argv without the word `image`); returns the exit status. */
export function runImage(argv: readonly string[], io: ImageIo): number {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    io.out(IMAGE_USAGE);
    return cmd === undefined ? 2 : 0;
  }
  try {
    switch (cmd) {
      case 'create': return create(rest, io);
      case 'info': return info(rest, io);
      case 'check': return check(rest, io);
      case 'snapshot': return snapshot(rest, io);
      case 'commit': return commit(rest, io);
      default: throw bad(`Unknown image command '${cmd}' (try: gasang image --help)`);
    }
  } catch (err) {
    // Files the user named that are missing or unusable are user mistakes.
    if (err instanceof StorageError && (err.kind === 'not-found' || err.kind === 'bad-spec')) {
      throw new InputError('bad-image', err.message, { cause: err });
    }
    throw err;
  }
}

/** Splits arguments into flags (with their values) and positional words. */
function parse(argv: readonly string[], valueFlags: readonly string[], boolFlags: readonly string[], cmd: string): {
  flags: Map<string, string>; words: string[];
} {
  const flags = new Map<string, string>();
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-') { words.push(arg); continue; }
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (boolFlags.includes(flag) && eq < 0) { flags.set(flag, ''); continue; }
    if (!valueFlags.includes(flag)) throw bad(`Unknown option ${flag} for gasang image ${cmd}`);
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') throw bad(`${flag} needs a value`);
    if (flags.has(flag)) throw bad(`${flag} given twice`);
    flags.set(flag, value);
  }
  return { flags, words };
}

function oneFile(words: string[], cmd: string): string {
  if (words.length !== 1) throw bad(`gasang image ${cmd} takes one FILE (see gasang image --help)`);
  return words[0]!;
}

/** Snapshots, checks and commits exist for qcow2 images only: asking for them on raw is a mistake. */
function qcow2File(words: string[], cmd: string): string {
  const file = oneFile(words, cmd);
  if (probeFormat(file) !== 'qcow2') throw bad(`${file} is a raw image; gasang image ${cmd} needs a qcow2 image`);
  return file;
}

/** "10G", "512M", "64k", "1.5G", "4096" (bytes) → bytes. */
export function parseSize(text: string, what = 'size'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw bad(`Invalid ${what} '${text}' (use a number with an optional K, M, G or T suffix)`);
  const scale = 1024 ** ' kmgtp'.indexOf((m[2] || ' ').toLowerCase());
  const bytes = Math.ceil(Number(m[1]) * scale);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw bad(`Invalid ${what} '${text}'`);
  return bytes;
}

function create(argv: readonly string[], io: ImageIo): number {
  const { flags, words } = parse(argv, ['-f', '-b', '-F', '-o'], [], 'create');
  const format = flags.get('-f') ?? 'qcow2';
  if (format !== 'qcow2' && format !== 'raw') throw bad(`Unknown format '${format}' (raw or qcow2)`);
  const backing = flags.get('-b');
  const backingFormat = flags.get('-F');
  if (backingFormat !== undefined && backingFormat !== 'raw' && backingFormat !== 'qcow2') throw bad(`Unknown backing format '${backingFormat}' (raw or qcow2)`);
  if (backingFormat !== undefined && backing === undefined) throw bad('-F needs a backing file (-b)');
  if (backing !== undefined && format === 'raw') throw bad('Raw images cannot have a backing file (use -f qcow2)');
  let clusterBits: number | undefined;
  for (const opt of (flags.get('-o') ?? '').split(',').filter(Boolean)) {
    const [key, value] = opt.split('=', 2);
    if (key !== 'cluster_size' || value === undefined) throw bad(`Unknown -o option '${opt}' (supported: cluster_size=SIZE)`);
    if (format === 'raw') throw bad('cluster_size applies to qcow2 images only');
    const cs = parseSize(value, 'cluster size');
    clusterBits = Math.log2(cs);
    if (!Number.isInteger(clusterBits) || clusterBits < 9 || clusterBits > 21) throw bad(`Cluster size must be a power of two from 512 to 2M, not ${value}`);
  }
  if (words.length < 1 || words.length > 2) throw bad('Usage: gasang image create [-f qcow2|raw] [-b BACKING [-F FMT]] FILE [SIZE]');
  const file = words[0]!;
  const size = words[1] !== undefined ? parseSize(words[1]) : undefined;
  if (backing !== undefined) {
    createOverlay(resolveBacking(file, backing), file, { size, clusterBits, baseFormat: backingFormat as 'raw' | 'qcow2' | undefined, storeAs: backing });
  } else {
    if (size === undefined) throw bad('gasang image create needs a SIZE (or a backing file)');
    if (format === 'raw') createRaw(file, size); else createQcow2(file, { size, clusterBits });
  }
  const made = imageInfo(file)[0]!;
  const extra = made.backingFile !== undefined ? ` backing_file=${made.backingFile} backing_fmt=${made.backingFormat}` : '';
  const cluster = made.clusterSize !== undefined ? ` cluster_size=${made.clusterSize}` : '';
  io.out(`Formatting '${file}', fmt=${format}${cluster} size=${made.virtualSize}${extra}\n`);
  return 0;
}

function info(argv: readonly string[], io: ImageIo): number {
  const { flags, words } = parse(argv, ['--output'], ['--backing-chain'], 'info');
  const output = outputFormat(flags);
  const chain = imageInfo(oneFile(words, 'info'));
  if (output === 'json') { io.out(`${JSON.stringify(chain, null, 2)}\n`); return 0; }
  io.out(chain.map(describe).join('\n'));
  return 0;
}

function outputFormat(flags: Map<string, string>): 'human' | 'json' {
  const o = flags.get('--output') ?? 'human';
  if (o !== 'human' && o !== 'json') throw bad(`--output must be human or json, not '${o}'`);
  return o;
}

function describe(i: ImageInfo): string {
  const lines = [
    `image: ${i.file}`,
    `file format: ${i.format}`,
    `virtual size: ${humanSize(i.virtualSize)} (${i.virtualSize} bytes)`,
    `disk size: ${humanSize(i.diskSize)}`,
  ];
  if (i.clusterSize !== undefined) lines.push(`cluster_size: ${i.clusterSize}`);
  if (i.backingFile !== undefined) {
    lines.push(`backing file: ${i.backingFile}${i.fullBackingFile !== i.backingFile ? ` (actual path: ${i.fullBackingFile})` : ''}`);
    if (i.backingFormat !== undefined) lines.push(`backing file format: ${i.backingFormat}`);
  }
  if (i.snapshots.length > 0) lines.push('Snapshot list:', ...snapshotTable(i.snapshots));
  if (i.qcow2) {
    const q = i.qcow2;
    lines.push(
      'Format specific information:',
      `    compat: ${q.version === 3 ? '1.1' : '0.10'}`,
      `    compression type: ${q.compressionType}`,
      `    lazy refcounts: ${q.lazyRefcounts}`,
      `    refcount bits: ${q.refcountBits}`,
      `    corrupt: ${q.corrupt}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function snapshotTable(list: SnapshotInfo[]): string[] {
  const pad = (s: string, n: number): string => s.padEnd(n);
  const rows = [`${pad('ID', 10)}${pad('TAG', 18)}${pad('VM SIZE', 10)}${pad('DATE', 21)}VM CLOCK`];
  for (const s of list) {
    const date = new Date(s.dateSec * 1000).toISOString().replace('T', ' ').slice(0, 19);
    const clock = new Date(Math.floor(s.vmClockNsec / 1e6)).toISOString().slice(11, 23);
    rows.push(`${pad(s.id, 10)}${pad(s.name, 18)}${pad(humanSize(s.vmStateSize), 10)}${pad(date, 21)}${clock}`);
  }
  return rows;
}

function check(argv: readonly string[], io: ImageIo): number {
  const { flags, words } = parse(argv, ['--output'], [], 'check');
  const output = outputFormat(flags);
  const file = qcow2File(words, 'check');
  const bar = progressBar(io, 'Checking');
  let r: CheckResult;
  try {
    r = checkImage(file, bar.update);
  } finally {
    bar.done();
  }
  if (output === 'json') {
    io.out(`${JSON.stringify({ filename: file, format: 'qcow2', ...r }, null, 2)}\n`);
  } else {
    const lines = [...r.messages];
    if (r.corruptions + r.leaks + r.checkErrors === 0) lines.push('No errors were found on the image.');
    if (r.corruptions > 0) lines.push(`${r.corruptions} errors were found on the image.`, 'Data may be corrupted, or further writes to the image may corrupt it.');
    if (r.leaks > 0) lines.push(`${r.leaks} leaked clusters were found on the image.`, 'This means waste of disk space, but no harm to data.');
    if (r.checkErrors > 0) lines.push(`${r.checkErrors} internal errors have occurred during the check.`);
    const pct = (n: number): string => (r.totalClusters === 0 ? 0 : (100 * n) / r.totalClusters).toFixed(2);
    const allocated = r.allocatedClusters === 0 ? 1 : r.allocatedClusters;
    lines.push(
      `${r.allocatedClusters}/${r.totalClusters} = ${pct(r.allocatedClusters)}% allocated, `
        + `${((100 * r.fragmentedClusters) / allocated).toFixed(2)}% fragmented, ${((100 * r.compressedClusters) / allocated).toFixed(2)}% compressed clusters`,
      `Image end offset: ${r.imageEndOffset}`,
    );
    io.out(`${lines.join('\n')}\n`);
  }
  if (r.corruptions > 0 || r.checkErrors > 0) return 4;
  return r.leaks > 0 ? 3 : 0;
}

function snapshot(argv: readonly string[], io: ImageIo): number {
  const { flags, words } = parse(argv, ['-c', '-a', '-d'], ['-l'], 'snapshot');
  const ops = ['-c', '-a', '-d', '-l'].filter(f => flags.has(f));
  if (ops.length !== 1) throw bad('gasang image snapshot needs exactly one of -l, -c NAME, -a NAME, -d NAME');
  const op = ops[0]!;
  const file = qcow2File(words, 'snapshot');
  const img = openQcow2(file, op === '-l');
  try {
    const name = flags.get(op)!;
    if (op === '-l') {
      const list = listSnapshots(img);
      if (list.length > 0) io.out(`Snapshot list:\n${snapshotTable(list).join('\n')}\n`);
    } else if (op === '-c') {
      createSnapshot(img, name);
    } else if (op === '-a') {
      applySnapshot(img, name);
    } else {
      deleteSnapshot(img, name);
    }
  } finally {
    img.close();
  }
  return 0;
}

function commit(argv: readonly string[], io: ImageIo): number {
  const { flags, words } = parse(argv, [], ['-d'], 'commit');
  const file = qcow2File(words, 'commit');
  const bar = progressBar(io, 'Committing');
  try {
    commitImage(file, { keep: flags.has('-d'), progress: bar.update });
  } finally {
    bar.done();
  }
  io.out('Image committed.\n');
  return 0;
}

/** A one-line progress bar on the error stream, redrawn when the percentage changes. */
function progressBar(io: ImageIo, label: string): { update: (done: number, total: number) => void; done: () => void } {
  let shown = -1;
  return {
    update: (done, total) => {
      if (!io.progress) return;
      const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
      if (pct === shown) return;
      shown = pct;
      const width = 30;
      const filled = Math.round((width * pct) / 100);
      io.err(`\r${label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${String(pct).padStart(3)}%`);
    },
    done: () => { if (io.progress && shown >= 0) io.err('\n'); },
  };
}

function humanSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${v} B` : `${Number(v.toFixed(3))} ${units[u]}`;
}
