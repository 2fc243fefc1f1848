/**
 * Snapshots of `gasang run` VMs: the snapshot keeps the run's hardware options as they were
 * given (args.ts RunOptions.board) and the directory they were given in, and restore parses them
 * again, so a snapshot's VM is checked exactly as the command line was.
 */
import { isAbsolute, resolve } from 'node:path';
import { InputError } from '../util/errors.js';
import { SnapshotError } from '../snapshot/index.js';
import { parseRunArgs, type RunDefaults, type RunOptions } from './args.js';

/** The SPEC section of a `gasang run` snapshot. */
export interface RunSnapshotSpec { kind: 'gasang run'; board: string[]; cwd: string }

const isNic = (arg: string): boolean => arg.startsWith('--nic=');

export function runSnapshotSpec(opts: RunOptions, cwd: string): RunSnapshotSpec {
  return { kind: 'gasang run', board: opts.board, cwd };
}

/** The snapshotted VM's options, with `now`'s NICs when it names any, and its JIT, stats and snapshot choices. */
export function restoredOptions(file: string, spec: unknown, now: RunOptions, defaults: RunDefaults): { opts: RunOptions; spec: RunSnapshotSpec } {
  const s = spec as Partial<RunSnapshotSpec> | null;
  if (s?.kind !== 'gasang run' || !Array.isArray(s.board) || !s.board.every(a => typeof a === 'string') || typeof s.cwd !== 'string') {
    throw new InputError('bad-snapshot', `--restore: ${file} is not a snapshot of gasang run (a daemon's VM is restored with gasang vm restore)`);
  }
  const nics = now.board.filter(isNic);
  const board = nics.length > 0 ? [...s.board.filter(a => !isNic(a)), ...nics] : s.board;
  let opts: RunOptions;
  try {
    opts = parseRunArgs(board, defaults);
  } catch (err) {
    throw new InputError('bad-snapshot', `--restore: ${file}: its options are refused: ${(err as Error).message}`, { cause: err });
  }
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(s.cwd!, p));
  for (const d of opts.drives) {
    if (d.kind === 'file') d.file = at(d.file);
    else d.files = d.files.map(at);
  }
  for (const sh of opts.shares) sh.host = at(sh.host);
  return {
    opts: { ...opts, jit: now.jit, stats: now.stats, restore: now.restore, snapshotOnExit: now.snapshotOnExit },
    spec: { kind: 'gasang run', board, cwd: s.cwd },
  };
}

/** A snapshot file that cannot be restored is the user's mistake: one line, status 2. */
export function restoreError(err: unknown): unknown {
  if (err instanceof SnapshotError && err.kind !== 'io') return new InputError('bad-snapshot', `--restore: ${err.message}`, { cause: err });
  return err;
}
