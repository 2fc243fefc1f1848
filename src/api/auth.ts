/**
 * Bearer-token authentication for TCP clients (Unix-socket clients are trusted: the socket's file
 * mode is the access control). Programs send `Authorization: Bearer TOKEN`; a browser opens
 * `/?token=TOKEN` once and gets a cookie, since a page cannot put headers on its WebSocket. The
 * cookie holds an HMAC of the token, not the token, and is SameSite=Strict; requests carrying
 * only the cookie must also come from the daemon's own origin.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors.js';

export const COOKIE_NAME = 'gasangd_session';
const WWW_AUTHENTICATE = { 'WWW-Authenticate': 'Bearer realm="gasangd"' };

/** Equal-time comparison of strings of any length (both hashed first, so lengths do not leak). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

export class TokenAuth {
  readonly cookieValue: string;

  constructor(private readonly token: string) {
    if (token.length < 16) throw new ApiError(500, 'internal', 'The API token must be at least 16 characters');
    this.cookieValue = createHmac('sha256', token).update('gasangd session').digest('base64url');
  }

  /** True for the right token (the /?token= login). */
  matches(token: string): boolean { return sameSecret(token, this.token); }

  setCookieHeader(): string { return `${COOKIE_NAME}=${this.cookieValue}; Path=/; HttpOnly; SameSite=Strict`; }

  /** Throws 401 (no or wrong credentials) or 403 (cookie from another origin); returns how the client proved itself. */
  check(req: IncomingMessage): 'bearer' | 'cookie' {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m) throw new ApiError(401, 'unauthorized', 'The Authorization header must be "Bearer TOKEN"', WWW_AUTHENTICATE);
      if (!this.matches(m[1]!)) throw new ApiError(401, 'unauthorized', 'Wrong API token', { 'WWW-Authenticate': 'Bearer realm="gasangd", error="invalid_token"' });
      return 'bearer';
    }
    const cookie = readCookie(req.headers.cookie, COOKIE_NAME);
    if (cookie === undefined) throw new ApiError(401, 'unauthorized', 'This daemon needs an API token over TCP (Authorization: Bearer TOKEN)', WWW_AUTHENTICATE);
    if (!sameSecret(cookie, this.cookieValue)) throw new ApiError(401, 'unauthorized', 'The session cookie is not valid for this daemon', WWW_AUTHENTICATE);
    const origin = req.headers.origin;
    if (origin !== undefined && !sameOrigin(origin, req.headers.host)) {
      throw new ApiError(403, 'forbidden', `Requests from ${origin} may not use this daemon's session cookie`);
    }
    return 'cookie';
  }
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}
