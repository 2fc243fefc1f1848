/** Public surface of the storage layer: block devices and the disk image formats. */
export { StorageError, type BlockDevice, type StorageErrorKind } from './block.js';
export { RawDisk, createRaw } from './raw.js';
export { Qcow2Image, type BackingRef, type Qcow2OpenOptions } from './qcow2/image.js';
export { createQcow2, type Qcow2CreateOptions } from './qcow2/create.js';
export { checkQcow2, type CheckResult } from './qcow2/check.js';
export { commitOverlay, makeEmpty, type CommitOptions, type Progress } from './qcow2/commit.js';
export { setBackingName } from './qcow2/rebase.js';
export { applySnapshot, createSnapshot, deleteSnapshot, listSnapshots, type SnapshotInfo } from './qcow2/snapshots.js';
export {
  checkImage, commitImage, createOverlay, imageInfo, openDisk, openQcow2, overlay, probeFormat, resolveBacking,
  MAX_CHAIN_DEPTH, type DiskFormat, type ImageInfo, type OpenDiskOptions,
} from './open.js';
