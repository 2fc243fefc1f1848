/**
 * Where gasangd listens and keeps its state by default, shared by the daemon and `gasang vm`.
 * GASANG_SOCKET overrides the socket for both.
 */
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

const isRoot = (): boolean => process.getuid?.() === 0;

/** $GASANG_SOCKET, else $XDG_RUNTIME_DIR/gasang/gasangd.sock, else /run/gasang (root) or a per-user temporary directory. */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GASANG_SOCKET) return env.GASANG_SOCKET;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'gasang', 'gasangd.sock');
  if (isRoot()) return '/run/gasang/gasangd.sock';
  return join(tmpdir(), `gasang-${process.getuid?.() ?? 'user'}`, 'gasangd.sock');
}

/** /var/lib/gasang for root, else $XDG_STATE_HOME/gasang or ~/.local/state/gasang. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (isRoot()) return '/var/lib/gasang';
  return join(env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'gasang');
}
