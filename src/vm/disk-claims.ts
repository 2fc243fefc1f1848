/**
 * The host files a VM's disks write and read, so that the host refuses to start a VM that would
 * write an image another running VM uses, or use an image another running VM writes — what QEMU's
 * image locks refuse ("Failed to get "write" lock"), here between the VMs of one host (Node has
 * no OFD locks to extend it to other processes). Each drive and volume member claims its image
 * for writing (unless read-only) and its backing chain for reading; an overlay drive claims its
 * private overlay for writing and the base (with the base's own chain) for reading. Shares are
 * not claimed: a host directory shared read-write by several VMs is a normal set-up.
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { imageInfo } from '../storage/open.js';
import type { CheckedSpec } from './spec.js';

export interface DiskClaim {
  /** The host file, symlinks resolved. */
  file: string;
  write: boolean;
  /** Where the spec names it, for messages (`drives[0]`, `volumes[1].files[0]`, or a backing file of either). */
  where: string;
}

/** Every file the VM's disks open, top images first, then their backing chains. */
export function diskClaims(spec: CheckedSpec, overlayOf: (drive: number) => string): DiskClaim[] {
  const out: DiskClaim[] = [];
  spec.drives?.forEach((d, i) => {
    const where = `drives[${i}]`;
    if (d.overlay) {
      out.push({ file: real(overlayOf(i)), write: true, where });
      claimChain(out, d.file, d.format, false, where, true);
    } else {
      claimChain(out, d.file, d.format, !d.readonly, where, false);
    }
  });
  spec.volumes?.forEach((v, i) => v.files.forEach((f, j) => claimChain(out, f, undefined, !v.readonly, `volumes[${i}].files[${j}]`, false)));
  return out;
}

/** Claims `top` (written if `write`) and its backing chain (read); all of it backing files when `backing`. */
function claimChain(out: DiskClaim[], top: string, format: 'raw' | 'qcow2' | undefined, write: boolean, where: string, backing: boolean): void {
  let chain: string[];
  try {
    chain = imageInfo(top, format).map(info => info.file);
  } catch {
    chain = [top]; // an image that cannot be read fails the start itself, with its own message
  }
  chain.forEach((file, depth) => {
    const isTop = depth === 0 && !backing;
    out.push({ file: real(file), write: write && isTop, where: isTop ? where : `${where} (backing file)` });
  });
}

function real(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return resolve(file);
  }
}

/** Why `mine` cannot be used while `theirs` is (another running VM's claims), or undefined. */
export function claimConflict(mine: readonly DiskClaim[], theirs: readonly DiskClaim[], other: string): string | undefined {
  for (const m of mine) {
    const t = theirs.find(c => c.file === m.file && (c.write || m.write));
    if (!t) continue;
    return t.write
      ? `${m.where}: ${m.file} is written by running VM ${other} (its ${t.where})`
      : `${m.where}: ${m.file} would be written while running VM ${other} reads it (its ${t.where})`;
  }
  return undefined;
}
