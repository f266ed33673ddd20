import { createPublicKey, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createLocalJWKSet, errors as joseErrors, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import type { Config } from './config';
import { ConfigError } from './config';
import { ForbiddenError, UnauthenticatedError } from './errors';
import { isUuid } from './ids';

/** DOMAIN.md §5. */
export const ROLES = ['trader', 'service', 'compliance', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Who a request acts for: the token's `sub` and `role` (a trader's `sub` is their trader id). */
export interface Principal {
  sub: string;
  role: Role;
  /** The trader whose data a `trader` may see; null for the other roles. */
  traderId: string | null;
}

export type TokenVerifier = (authorization: string | undefined) => Promise<Principal>;

const SECRET_FILE = 'tradetrail-jwt-secret';

/** The HS256 secret kept in an embedded data directory, created on first use (mode 600). */
export function localSecret(dataDir: string, create: boolean): string | undefined {
  const file = path.join(dataDir, SECRET_FILE);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  if (!create) return undefined;
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}

/**
 * Verifies `Authorization: Bearer <JWT>` (jose): HS256 with a secret, or RS256/ES256 with a public
 * key or a JWKS file. `sub`, `role` and `exp` are required; anything wrong is UNAUTHENTICATED (401).
 */
export function createVerifier(cfg: Config, secret: string | undefined): TokenVerifier {
  const pem =
    cfg.jwtPublicKey &&
    (cfg.jwtPublicKey.includes('-----BEGIN') ? cfg.jwtPublicKey : readFileSync(cfg.jwtPublicKey, 'utf8'));
  let verify: (token: string) => Promise<JWTPayload>;
  const options = { issuer: cfg.jwtIssuer, audience: cfg.jwtAudience, requiredClaims: ['exp', 'sub'] };
  if (pem) {
    const key = createPublicKey(pem);
    verify = async (t) => (await jwtVerify(t, key, { ...options, algorithms: ['RS256', 'ES256'] })).payload;
  } else if (cfg.jwtJwksFile) {
    const jwks = createLocalJWKSet(JSON.parse(readFileSync(cfg.jwtJwksFile, 'utf8')));
    verify = async (t) => (await jwtVerify(t, jwks, { ...options, algorithms: ['RS256', 'ES256'] })).payload;
  } else if (secret) {
    const key = new TextEncoder().encode(secret);
    verify = async (t) => (await jwtVerify(t, key, { ...options, algorithms: ['HS256'] })).payload;
  } else {
    throw new ConfigError(
      'No key to verify tokens with: set TRADETRAIL_JWT_SECRET, TRADETRAIL_JWT_PUBLIC_KEY or TRADETRAIL_JWT_JWKS_FILE (or TRADETRAIL_AUTH=disabled in development).',
    );
  }

  // A gateway sends the same token with every call: a verified token is remembered until it
  // expires (at most a minute, at most 10,000 tokens), so it is not verified again each time.
  const verified = new Map<string, { principal: Principal; until: number }>();
  return async (authorization) => {
    const cached = authorization ? verified.get(authorization) : undefined;
    if (cached && cached.until > Date.now()) return cached.principal;
    const principal = await check(authorization);
    if (verified.size >= 10_000) verified.clear();
    verified.set(authorization!, {
      principal: principal.principal,
      until: Math.min(principal.exp * 1000, Date.now() + 60_000),
    });
    return principal.principal;
  };

  async function check(authorization: string | undefined): Promise<{ principal: Principal; exp: number }> {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match) {
      throw new UnauthenticatedError(
        authorization
          ? 'The Authorization header must be "Bearer <token>".'
          : 'Authentication required: send Authorization: Bearer <token>.',
      );
    }
    let payload: JWTPayload;
    try {
      payload = await verify(match[1]);
    } catch (error) {
      throw new UnauthenticatedError(describeTokenError(error));
    }
    const role = payload.role;
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
      throw new UnauthenticatedError(`The token's role claim must be one of ${ROLES.join(', ')}.`);
    }
    const sub = payload.sub!;
    if (role === 'trader' && !isUuid(sub))
      throw new UnauthenticatedError("A trader token's sub must be the trader's id (a UUID).");
    const principal: Principal = {
      sub: role === 'trader' ? sub.toLowerCase() : sub,
      role: role as Role,
      traderId: role === 'trader' ? sub.toLowerCase() : null,
    };
    return { principal, exp: payload.exp! };
  }
}

function describeTokenError(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'The token has expired.';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return "The token's signature does not verify.";
  if (error instanceof joseErrors.JWTClaimValidationFailed)
    return `The token's ${error.claim} claim is not acceptable (${error.reason}).`;
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return "The token's signing algorithm is not accepted.";
  return 'The token is malformed.';
}

/** Signs an HS256 token (for `npm run token` and tests). */
export function mintToken(secret: string, claims: { sub: string; role: Role }, expiresIn = '12h'): Promise<string> {
  return new SignJWT({ role: claims.role })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret));
}

/** What each role may do (DOMAIN.md §5); refusals are FORBIDDEN and happen before any write. */
export function requireRole(principal: Principal, allowed: readonly Role[], action: string): void {
  if (!allowed.includes(principal.role)) {
    throw new ForbiddenError(`A ${principal.role} may not ${action}; that needs the role ${allowed.join(' or ')}.`);
  }
}

/** A trader acts only for themself. */
export function requireSelf(principal: Principal, traderId: string, action: string): void {
  if (principal.role === 'trader' && principal.traderId !== traderId.toLowerCase()) {
    throw new ForbiddenError(`A trader may ${action} only for themself.`);
  }
}

/** Used when TRADETRAIL_AUTH=disabled (development only). */
export const DEVELOPMENT_ADMIN: Principal = { sub: 'auth-disabled', role: 'admin', traderId: null };
