/**
 * `npm run token -- --role compliance` | `--trader <trader id>` [--sub <name>] [--expires 12h]
 * Prints an HS256 token signed with TRADETRAIL_JWT_SECRET, or with the secret `npm start` keeps in
 * the embedded data directory. (With RS256/ES256 keys, tokens come from your identity provider.)
 */
import { localSecret, mintToken, ROLES, type Role } from '../src/auth';
import { config } from '../src/config';
import { isUuid } from '../src/ids';
import { commandLine, usageError } from './cli';

const OTHER_ROLES = ROLES.filter((r) => r !== 'trader');

/**
 * The time spans `mintToken` hands to jose's `setExpirationTime` (jose 5.10, lib/secs.ts), in their
 * plain form: a positive number and a unit (no sign, no "ago": a token must not be born expired).
 */
const SPAN = /^(\d+|\d+\.\d+) ?(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y)$/i;

const COMMAND = {
  name: 'token',
  synopsis: `--role ${OTHER_ROLES.join('|')} [--sub NAME] [--expires SPAN]\n       npm run token -- --trader ID [--expires SPAN]`,
  about:
    'Prints a bearer token (HS256) for a role, signed with TRADETRAIL_JWT_SECRET or, without it, with the\n' +
    'secret `npm start` keeps in the embedded data directory. With TRADETRAIL_JWT_PUBLIC_KEY or\n' +
    'TRADETRAIL_JWT_JWKS_FILE, tokens come from your identity provider instead.',
  options: {
    role: { type: 'string', value: 'ROLE', help: `${OTHER_ROLES.join(', ')} (or --trader)` },
    trader: { type: 'string', value: 'ID', help: "a trader's token: the trader's id (a UUID); its subject" },
    sub: { type: 'string', value: 'NAME', help: "the token's subject (who it is for)", default: 'ROLE-cli' },
    expires: {
      type: 'string',
      value: 'SPAN',
      help: 'how long it is valid: a number and a unit (s, m, h, d, w, y), e.g. 30m, 12h, 7d',
      default: '12h',
    },
  },
} as const;

const args = commandLine(COMMAND, ({ values }) => {
  if (values.trader !== undefined) {
    if (!isUuid(values.trader)) usageError(`--trader needs the trader's id (a UUID); got "${values.trader}"`);
    if (values.role !== undefined && values.role !== 'trader') usageError('give --role or --trader, not both');
    if (values.sub !== undefined) usageError("a trader's token has the trader id as its subject: drop --sub");
  } else if (values.role === undefined) {
    usageError(`missing --role ${OTHER_ROLES.join('|')} or --trader ID`);
  } else if (!(OTHER_ROLES as readonly string[]).includes(values.role)) {
    usageError(
      values.role === 'trader'
        ? "a trader's token is made with --trader ID"
        : `--role must be one of ${OTHER_ROLES.join(', ')}; got "${values.role}"`,
    );
  }
  const expires = values.expires ?? '12h';
  const span = SPAN.exec(expires);
  if (!span || Number(span[1]) <= 0) {
    usageError(`--expires must be a time span such as 30m, 12h or 7d; got "${expires}"`);
  }
  const role = (values.trader !== undefined ? 'trader' : values.role) as Role;
  return { role, sub: values.trader ?? values.sub ?? `${role}-cli`, expires };
});

async function main(): Promise<void> {
  const cfg = config();
  const secret = cfg.jwtSecret ?? localSecret(cfg.dataDir, false);
  if (!secret) {
    console.error(
      `No secret: set TRADETRAIL_JWT_SECRET, or run npm start once so that it creates one in ${cfg.dataDir}.`,
    );
    process.exit(1);
  }
  console.log(await mintToken(secret, { sub: args.sub, role: args.role }, args.expires));
}

main().catch((error: unknown) => {
  console.error(`token: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
