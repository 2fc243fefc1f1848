/** The REST API of gasangd: the server (over a HostApi), a client, and where the daemon listens by default. */
export { ApiServer, jsonLogger, type ApiServerOptions, type LogEntry, type Logger } from './server.js';
export { ApiClient, ApiClientError, type Endpoint, type HostResources, type VmAction } from './client.js';
export { ApiError } from './errors.js';
export type { ConsoleEvent } from './console.js';
export { defaultSocketPath, defaultStateDir } from './paths.js';
