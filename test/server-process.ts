import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { TEST_LOG_KEY_PEM } from './log-key';

export const ROOT = path.join(__dirname, '..');
export const PROCESS_SECRET = 'a-secret-for-server-processes-of-the-tests';

export interface ServerProcess {
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  origin: string;
  output: () => string;
  exited: Promise<number | null>;
}

/**
 * A real server process (`src/index.ts` through ts-node: the entry point `npm start` runs, without a
 * build) on `databaseUrl`, with the tests' token secret and log key; resolves once it serves.
 */
export async function startServerProcess(
  databaseUrl: string,
  env: Record<string, string> = {},
  timeoutMs = 90_000,
): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/index.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'development',
      DATABASE_URL: databaseUrl,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      TRADETRAIL_JWT_SECRET: PROCESS_SECRET,
      TRADETRAIL_LOG_SIGNING_KEY: TEST_LOG_KEY_PEM,
      TRADETRAIL_DEMO_DATA: 'off',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const origin = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const check = (): void => {
      const m = /Tradetrail GraphQL: (http:\/\/[^/\s]+)\/graphql/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
  return { child, origin, output: () => out, exited };
}

/** SIGTERM, and the exit code once it has exited. */
export async function stopServerProcess(server: ServerProcess): Promise<number | null> {
  server.child.kill('SIGTERM');
  return server.exited;
}
