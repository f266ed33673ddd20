/**
 * The command lines of the scripts (`npm run token`, `seed`, `bench:*`, …), parsed the same way by
 * `node:util` parseArgs (strict): `--help`/`-h` prints the usage (what the command does, every option
 * with its default) on stdout and exits 0; an unknown option, a missing value or a bad value prints
 * one line naming the problem and a pointer to --help on stderr and exits 2, never a stack trace.
 *
 * This module imports nothing but `node:util`: a script that loads heavy modules (TypeORM, the schema)
 * reads its command line before importing them, so that --help and a wrong argument answer at once.
 */
import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** The value's placeholder in the help, e.g. `N`, `FILE` (string options). */
  value?: string;
  /** One line (or a few) for the help. */
  help: string;
  /** The default, as the help shows it. */
  default?: string;
  short?: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

export interface Command<S extends OptionSpecs> {
  /** The npm script's name, e.g. `token` (it prefixes the error line). */
  name: string;
  /** How a user runs it (default `npm run NAME --`), for the usage line and the pointer to --help. */
  run?: string;
  /** The arguments in the usage line, e.g. `--role ROLE [--sub NAME]`; default `[options]`, '' for none. */
  synopsis?: string;
  /** What the command does. */
  about: string;
  options: S;
  /** Positional arguments, as `NAME  what it is` lines of the help; without them none is accepted. */
  positionals?: string;
  /** A closing paragraph (environment, exit status). */
  notes?: string;
}

export type Values<S extends OptionSpecs> = {
  [K in keyof S]?: S[K]['type'] extends 'boolean' ? boolean : string;
};

export interface Parsed<S extends OptionSpecs> {
  values: Values<S>;
  positionals: string[];
}

/** A wrong command line: the message is the one line the user sees. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Throws the UsageError of a bad value, e.g. `usageError('--orders must be …; got "x"')`. */
export function usageError(message: string): never {
  throw new UsageError(message);
}

const run = (command: Command<OptionSpecs>): string => command.run ?? `npm run ${command.name} --`;

/** The --help text. */
export function helpText<S extends OptionSpecs>(command: Command<S>): string {
  const rows: [string, string][] = Object.entries(command.options).map(([name, o]) => [
    `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`,
    `${o.help}${o.default === undefined ? '' : ` (default: ${o.default})`}`,
  ]);
  rows.push(['-h, --help', 'print this help']);
  const width = Math.max(...rows.map(([left]) => left.length)) + 3;
  const indent = (text: string) => text.replace(/\n/g, `\n${' '.repeat(width + 2)}`);
  return [
    `Usage: ${command.synopsis === '' ? run(command).replace(/ --$/, '') : `${run(command)} ${command.synopsis ?? '[options]'}`}`,
    '',
    command.about,
    ...(command.positionals ? ['', `  ${command.positionals.replace(/\n/g, '\n  ')}`] : []),
    '',
    'Options:',
    ...rows.map(([left, right]) => `  ${left.padEnd(width)}${indent(right)}`),
    ...(command.notes ? ['', command.notes] : []),
  ].join('\n');
}

/** The one line of a wrong command line: the problem and where to read the usage. */
export function usageLine<S extends OptionSpecs>(command: Command<S>, error: UsageError): string {
  return `${command.name}: ${error.message} (see ${run(command)} --help)`;
}

const asksForHelp = (argv: readonly string[]): boolean => {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
};

/**
 * `'help'`, or the parsed command line; a UsageError naming the first problem. --help wins over any
 * other problem of the line. Pure, for commands that print for themselves (verify) and for tests.
 */
export function parseCommandLine<S extends OptionSpecs>(command: Command<S>, argv: string[]): Parsed<S> | 'help' {
  const options = Object.fromEntries(
    Object.entries(command.options).map(([name, o]) => [
      name,
      o.short ? { type: o.type, short: o.short } : { type: o.type },
    ]),
  );
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: command.positionals !== undefined,
      strict: true,
    });
  } catch (error) {
    if (asksForHelp(argv)) return 'help';
    // parseArgs' first sentence ("Unknown option '--x'", "Option '--out <value>' argument missing").
    const message = (error as Error).message.split('\n')[0].split('. ')[0].replace(/\.$/, '');
    const ambiguous = /^Option '(-[^']+)' argument is ambiguous/.exec(message);
    throw new UsageError(
      ambiguous
        ? `Option '${ambiguous[1]}' needs a value (a value that starts with a dash is given as ${ambiguous[1]}=-VALUE)`
        : message,
    );
  }
  if (parsed.values.help) return 'help';
  return { values: parsed.values as Values<S>, positionals: parsed.positionals };
}

/**
 * A script's command line (`process.argv`), turned into its options by `check` (which throws a
 * UsageError, through `usageError`, on a bad value). Prints the help and exits 0 on --help; prints
 * one line and exits 2 on a wrong command line.
 */
export function commandLine<S extends OptionSpecs, T>(
  command: Command<S>,
  check: (parsed: Parsed<S>) => T,
  argv = process.argv.slice(2),
): T {
  try {
    const parsed = parseCommandLine(command, argv);
    if (parsed === 'help') {
      process.stdout.write(`${helpText(command)}\n`);
      process.exit(0);
    }
    return check(parsed);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${usageLine(command, error)}\n`);
    process.exit(2);
  }
}

/**
 * A whole-number option: undefined when not given (the caller's default applies), else a number in
 * [min, max]; anything else is a UsageError naming the option and what it got.
 */
export function wholeNumber(raw: string | undefined, option: string, min = 0, max = 1e12): number | undefined {
  if (raw === undefined) return undefined;
  const value = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!(value >= min && value <= max)) {
    usageError(
      `${option} must be a whole number ${max < 1e12 ? `from ${min} to ${max}` : `of at least ${min}`}; got "${raw}"`,
    );
  }
  return value;
}

/** A benchmark's --keep NAME and --reuse NAME options (`saved`: what --reuse skips, for the help). */
export function keptOptions(saved: string): { keep: OptionSpec; reuse: OptionSpec } {
  return {
    keep: {
      type: 'string',
      value: 'NAME',
      help: "build into database NAME on DATABASE_URL's server and keep it (with its log key, in the temp folder)",
    },
    reuse: { type: 'string', value: 'NAME', help: `measure a database an earlier --keep NAME built, without ${saved}` },
  };
}

/** A --keep/--reuse database name of a benchmark (a database on DATABASE_URL's server that outlives the run). */
export function keptName(value: string | undefined, option: string): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(value))
    usageError(`${option} must be a database name: a-z, 0-9 and _ (got "${value}")`);
  if (!process.env.DATABASE_URL) usageError(`${option} needs DATABASE_URL (a server that outlives the run)`);
  return value;
}
