import { createHash } from 'node:crypto';
import { setSealKey } from '../src/execution-log/entry-encoding';
import { logKeyFromSeed, logKeyPem } from '../src/execution-log/log-key';

/** The log key of every test process (fixed, so that servers the tests spawn share it). */
export const TEST_LOG_KEY = logKeyFromSeed(
  createHash('sha256').update('tradetrail test log key').digest(),
  'tradetrail',
);
export const TEST_LOG_KEY_PEM = logKeyPem(TEST_LOG_KEY);

/** Another key: what an attacker, or a misconfigured server, would sign with. */
export const OTHER_LOG_KEY = logKeyFromSeed(createHash('sha256').update('not the log key').digest(), 'tradetrail');

setSealKey(TEST_LOG_KEY.sealKey);
