/** Public surface of snapshots: whole-VM snapshot files (format.ts), writing and restoring them. */
export { SnapshotError, type SnapshotErrorKind } from './errors.js';
export { FORMAT_VERSION } from './format.js';
export { snapshotMachineLive, type LiveSnapshotStats, type SnapshotProgress } from './live.js';
export { MachineSnapshot, snapshotMachine, type RestoreOptions, type SnapshotMeta, type SnapshotStats } from './machine.js';
export type { LazyRamStats } from './lazy-ram.js';
export { checkDrives, revertDrives, type DiskRef, type SnapshotDrive } from './disks.js';
