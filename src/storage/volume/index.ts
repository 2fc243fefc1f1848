/**
 * Volumes: one BlockDevice made of several (linear concatenation, RAID-0 stripe, RAID-1 mirror).
 * Members come already opened, so this module does not depend on the image formats.
 */
import { StorageError } from '../block.js';
import { LinearVolume } from './linear.js';
import { MirrorVolume } from './mirror.js';
import { StripeVolume } from './stripe.js';
import { DEFAULT_STRIPE_BYTES, checkMembers, type Volume, type VolumeOptions } from './volume.js';

export type { Volume, VolumeMode, VolumeOptions, VolumeSpec } from './volume.js';
export { DEFAULT_STRIPE_BYTES } from './volume.js';

export function openVolume(opts: VolumeOptions): Volume {
  checkMembers(opts);
  if (opts.mode !== 'stripe' && opts.stripeBytes !== undefined) {
    throw new StorageError('bad-spec', `A stripe size is meaningless for a ${opts.mode} volume`);
  }
  const readOnly = opts.readOnly ?? false;
  switch (opts.mode) {
    case 'linear': return new LinearVolume(opts.members, readOnly);
    case 'stripe': return new StripeVolume(opts.members, opts.stripeBytes ?? DEFAULT_STRIPE_BYTES, readOnly);
    case 'mirror': return new MirrorVolume(opts.members, opts);
    default: throw new StorageError('bad-spec', `Unknown volume mode '${String(opts.mode)}'`);
  }
}
