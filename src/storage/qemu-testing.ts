/**
 * Test helpers around the real QEMU tools (Debian's qemu-utils): qemu-img and qemu-io as
 * oracles for what gasang's disk images contain and whether their metadata is consistent.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function qemuImg(...args: string[]): string {
  return execFileSync('qemu-img', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs qemu-io commands (`-c` each) on an image. */
export function qemuIo(file: string, format: string, ...commands: string[]): string {
  const args = ['-f', format];
  for (const c of commands) args.push('-c', c);
  return execFileSync('qemu-io', [...args, file], { encoding: 'utf8' });
}

export interface QemuCheck {
  status: number;
  corruptions: number;
  leaks: number;
  checkErrors: number;
  allocatedClusters: number;
  fragmentedClusters: number;
  compressedClusters: number;
  imageEndOffset: number;
  output: string;
}

/** `qemu-img check --output=json`: exit 0 clean, 2 corruptions, 3 leaks only. */
export function qemuCheck(file: string): QemuCheck {
  const r = spawnSync('qemu-img', ['check', '--output=json', file], { encoding: 'utf8' });
  let json: Record<string, number> = {};
  try { json = JSON.parse(r.stdout) as Record<string, number>; } catch { /* reported through status */ }
  return {
    status: r.status ?? -1,
    corruptions: json['corruptions'] ?? 0,
    leaks: json['leaks'] ?? 0,
    checkErrors: json['check-errors'] ?? 0,
    allocatedClusters: json['allocated-clusters'] ?? 0,
    fragmentedClusters: json['fragmented-clusters'] ?? 0,
    compressedClusters: json['compressed-clusters'] ?? 0,
    imageEndOffset: json['image-end-offset'] ?? 0,
    output: r.stdout + r.stderr,
  };
}

/** The whole virtual disk as qemu-img sees it (through the backing chain). */
export function qemuRead(file: string, tmp: string, extra: string[] = []): Buffer {
  const out = join(tmp, `convert-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.raw`);
  qemuImg('convert', ...extra, '-O', 'raw', file, out);
  try {
    return readFileSync(out);
  } finally {
    rmSync(out, { force: true });
  }
}

export function qemuInfo(file: string): Record<string, unknown> {
  return JSON.parse(qemuImg('info', '--output=json', file)) as Record<string, unknown>;
}

/** A fresh temporary directory and its removal. */
export function tempDir(prefix = 'gasang-storage-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic pseudo-random bytes (xorshift32, a word at a time) so failures can be replayed. */
export function randomBytes(n: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4));
  let x = (seed >>> 0) || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, n);
}

/** A small seeded generator for offsets and lengths. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x100000000;
  };
}
