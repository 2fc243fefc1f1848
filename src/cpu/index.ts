export { Cpu, type CpuOptions } from './cpu.js';
export { Hart } from './hart.js';
export * from './layout.js';
