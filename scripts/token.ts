/**
 * `npm run token -- --role compliance` | `--trader <trader id>` [--sub <name>] [--expires 12h]
 * Prints an HS256 token signed with TRADETRAIL_JWT_SECRET, or with the secret `npm start` keeps in
 * the embedded data directory. (With RS256/ES256 keys, tokens come from your identity provider.)
 */
import { parseArgs } from 'node:util';
import { localSecret, mintToken, ROLES, type Role } from '../src/auth';
import { config } from '../src/config';
import { isUuid } from '../src/ids';

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      role: { type: 'string' },
      trader: { type: 'string' },
      sub: { type: 'string' },
      expires: { type: 'string', default: '12h' },
    },
  });
  const role = (values.trader ? 'trader' : values.role) as Role | undefined;
  if (!role || !(ROLES as readonly string[]).includes(role)) {
    fail(
      `usage: npm run token -- --role ${ROLES.filter((r) => r !== 'trader').join('|')} [--sub name] | --trader <trader id>  [--expires 12h]`,
    );
  }
  if (role === 'trader' && !(values.trader && isUuid(values.trader))) fail('--trader needs the trader id (a UUID).');
  const cfg = config();
  const secret = cfg.jwtSecret ?? localSecret(cfg.dataDir, false);
  if (!secret)
    fail(`No secret: set TRADETRAIL_JWT_SECRET, or run npm start once so that it creates one in ${cfg.dataDir}.`);
  const sub = role === 'trader' ? values.trader! : (values.sub ?? `${role}-cli`);
  console.log(await mintToken(secret, { sub, role }, values.expires));
}

void main();
