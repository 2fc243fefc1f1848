/** Public surface of the host: many VMs, each on its own thread, sharing the machine fairly. */
export { Host, Vm } from './host.js';
export { checkSpec, checkFiles, BUNDLED_GUEST, DEFAULTS, MAX_CPU_SHARES, MAX_MEMORY_MIB, NAME_PATTERN } from './spec.js';
export { REPLAY_BYTES } from './console-hub.js';
export * from './types.js';
