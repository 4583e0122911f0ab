/**
 * CPU per component for the benchmark (Linux /proc): this process, the
 * benchmark's own Temporal dev server (its PID and any children), and the
 * benchmark's own Postgres backends, the ones `pg_stat_activity` lists on the
 * benchmark's database, re-read at every sample. Other clients' backends on
 * the same server are never counted.
 *
 * A backend's CPU is kept as last seen, so one that exits between samples
 * stops growing instead of vanishing (which would make a delta negative);
 * the CPU it used after its last sample is lost, so sample often (the
 * throughput batches sample every second).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Client as PgClient } from 'pg';

const TICKS = Number(process.env.CLK_TCK ?? 100);

/** CPU seconds of one process (utime + stime + cutime + cstime), or undefined once it is gone. */
export function processCpu(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS;
  } catch {
    return undefined;
  }
}

/** The PIDs whose parent is `pid` (one level; Temporal's dev server starts none today). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out; // not Linux
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(e));
    } catch {
      // the process ended
    }
  }
  return out;
}

export interface CpuSplit {
  /** This process: the client, both workers, the harness. */
  node: number;
  temporal: number;
  postgres: number;
}

export class CpuMeter {
  private readonly lastSeen = new Map<string, number>();
  private readonly pg: PgClient;
  private connected?: Promise<void>;

  /**
   * @param serverPid the benchmark's Temporal dev server
   * @param database the benchmark's database: the backends connected to it are the benchmark's
   * @param adminUrl a connection on another database (its own backend is then never counted)
   */
  constructor(
    private readonly serverPid: number,
    private readonly database: string,
    adminUrl: string,
  ) {
    this.pg = new PgClient({ connectionString: adminUrl });
    this.pg.on('error', () => undefined);
  }

  /** Reads every counted process now and returns the totals so far (monotonic per component). */
  async sample(): Promise<CpuSplit> {
    this.connected ??= this.pg.connect();
    await this.connected;
    const { rows } = await this.pg.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [this.database]);
    for (const { pid } of rows) this.see(`pg:${pid}`, pid);
    for (const pid of [this.serverPid, ...childrenOf(this.serverPid)]) this.see(`temporal:${pid}`, pid);
    const sum = (prefix: string) => [...this.lastSeen].reduce((s, [k, v]) => (k.startsWith(prefix) ? s + v : s), 0);
    const u = process.cpuUsage();
    return { node: (u.user + u.system) / 1e6, temporal: sum('temporal:'), postgres: sum('pg:') };
  }

  private see(key: string, pid: number): void {
    const cpu = processCpu(pid);
    // A PID reused by another process would show less CPU than last seen: keep the larger.
    if (cpu !== undefined) this.lastSeen.set(key, Math.max(cpu, this.lastSeen.get(key) ?? 0));
  }

  /** Samples every `ms` until the returned function is called; that call takes the last sample. */
  every(ms: number): () => Promise<CpuSplit> {
    let pending: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      pending = pending.then(() => this.sample()).catch(() => undefined);
    }, ms);
    return async () => {
      clearInterval(timer);
      await pending;
      return this.sample();
    };
  }

  async close(): Promise<void> {
    if (this.connected) await this.pg.end().catch(() => undefined);
  }
}
