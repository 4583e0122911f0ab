/**
 * How the CLI prints and reads: aligned tables, local times with their zone,
 * `--json`, and the option-value parsers (k=v pairs, JSON files, times). A bad
 * value is a {@link UsageError} naming the option, what it got and what it takes.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from './exit';

/** Prints `value` as indented JSON on stdout. */
export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** A column: its header and how a row shows in it. */
export type Column<T> = [header: string, cell: (row: T) => string | number | null | undefined];

/** Rows as an aligned table with a header line; `empty` when there are none. The last column is not padded. */
export function table<T>(rows: readonly T[], columns: ReadonlyArray<Column<T>>, empty = '(none)'): string {
  if (rows.length === 0) return empty;
  const cells = rows.map((r) => columns.map(([, cell]) => oneLine(cell(r))));
  const widths = columns.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(columns.map(([h]) => h)), ...cells.map(line)].join('\n');
}

function oneLine(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === '') return '-';
  return String(v).replace(/\s*\n\s*/g, ' ');
}

/** `label: value` lines, labels aligned. */
export function fields(pairs: ReadonlyArray<[string, string | number | null | undefined]>): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width)} ${oneLine(v)}`).join('\n');
}

const zoneName = (d: Date) => new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? '';
const two = (n: number) => String(n).padStart(2, '0');

/** An ISO time in local time with its zone: `2025-03-04 14:05:09 CET`. */
export function time(iso: string | null | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${zoneName(d)}`;
}

/** The first 12 hex digits of a version hash. */
export const short = (hash: string | null | undefined) => (hash ? hash.slice(0, 12) : '-');

/** A repeatable option's collector for commander. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `k=v` options as a record; a value without `=` is a usage error naming the option. */
export function pairs(option: string, values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`${option} ${JSON.stringify(v)} is not <key>=<value>`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** The JSON in a file (`-` reads stdin); unreadable or not JSON is a usage error naming the option. */
export function jsonFile(option: string, file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UsageError(`${option} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`${option} ${file} is not JSON: ${(err as Error).message}`);
  }
}

const AGO = /^(\d+)(s|m|h|d)$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** An ISO 8601 time, or a duration ago (`30m`, `2h`, `7d`), as ISO; anything else is a usage error naming the option. */
export function timeOption(option: string, value: string | undefined, now = Date.now()): string | undefined {
  if (value === undefined) return undefined;
  const ago = AGO.exec(value);
  if (ago) return new Date(now - Number(ago[1]) * UNIT_MS[ago[2] as keyof typeof UNIT_MS]).toISOString();
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(Date.parse(value))) return new Date(value).toISOString();
  throw new UsageError(`${option} ${JSON.stringify(value)} is not a time; allowed: an ISO 8601 date-time (2025-03-04T10:00:00Z, or a date 2025-03-04) or a duration ago (30s, 15m, 2h, 7d)`);
}

/** One of `allowed`, else a usage error naming the option. */
export function oneOf<T extends string>(option: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T)) throw new UsageError(`${option} ${JSON.stringify(value)} is not allowed; allowed: ${allowed.join(', ')}`);
  return value as T;
}

/** A positive integer option value, else a usage error naming the option. */
export function intOption(option: string, value: string | undefined, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > max) throw new UsageError(`${option} ${JSON.stringify(value)} is not allowed; allowed: an integer from 1 to ${max}`);
  return n;
}
