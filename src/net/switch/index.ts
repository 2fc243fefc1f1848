/** The virtual switch of gasangd's named networks (README.md): the switch, its ports' VM-side backend, and their options. */
export { VirtualSwitch, type SwitchOptions, type SwitchStats, type PortStats } from './switch.js';
export { SwitchPortBackend } from './backend.js';
export { handleTransfer, type PortHandle, type Transport } from './channel.js';
export type { PortOptions, RateLimit, PortCounters, DropCounters } from './port.js';
export type { AclRule, AclAction, AclDirection } from './acl.js';
export { parseAclText } from './acl.js';
export { vlanList } from './port.js';
export { SwitchError, type SwitchErrorCode } from './errors.js';
