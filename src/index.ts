/**
 * gasang as a library: `import { Host } from 'gasang'`, then
 * `const host = new Host({ stateDir })`, `const vm = await host.create({ name: 'a' })`,
 * `await vm.start()`, `vm.attachConsole({ write: true })`, `await vm.stop()`.
 */
export * from './vm/index.js';
export { GasangError, InputError } from './util/errors.js';
