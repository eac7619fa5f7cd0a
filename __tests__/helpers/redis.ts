/**
 * Real Redis servers for the Redis suites: a single `redis-server` (that tests can stop,
 * kill, restart on the same port and stall with `DEBUG SLEEP`) and a three-master Redis
 * Cluster. Everything binds to 127.0.0.1 on free ports (never the machine's own 6379),
 * persists nothing and lives in a temporary directory.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describeNeeding, type Requirement } from "./servers";

/** `true` when `redis-server` and `redis-cli` are on the PATH. */
export const hasRedis = ["redis-server", "redis-cli"].every((bin) => spawnSync(bin, ["--version"]).status === 0);

/** Redis, for `describeNeeding`. */
export const REDIS: Requirement = {
  available: hasRedis,
  missing: "redis-server/redis-cli are not on the PATH: install them (apt-get install redis-server)",
};

/**
 * `describe` for a suite that needs Redis. Without `redis-server` the suite is skipped with a
 * loud notice, except under `CI=true`, where it fails: CI must run the Redis suites.
 */
export function describeRedis(name: string, fn: () => void): void {
  describeNeeding([REDIS], name, fn);
}

export interface RedisServer {
  port: number;
  url: string;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Kills the server (SIGKILL): a crash, as clients see it. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: nothing is persisted). */
  restart(): Promise<void>;
  /** Blocks the server for `ms` with `DEBUG SLEEP`; resolves once it sleeps, `ended` when it answers again. */
  stall(ms: number): Promise<{ ended: Promise<void> }>;
  /** Runs `redis-cli -p <port> ...args` and returns its output, trimmed. */
  cli(...args: string[]): Promise<string>;
  /** Calls per command (lower case, e.g. `hgetall`) from `INFO commandstats`. */
  stats(): Promise<Record<string, number>>;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs `redis-cli -p port ...args`. */
export function cli(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], (err, stdout) => (err ? reject(err) : resolve(stdout.trim())));
  });
}

/** Starts a redis-server on a free port (retrying if another process takes the port first). */
export async function startRedis(extra: string[] = []): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), "sessionbox-redis-"));
  let port = 0;
  let proc: ChildProcess | undefined;
  const launch = async () => (proc = await spawnServer(port, dir, extra));
  for (let attempt = 0; proc === undefined; attempt++) {
    port = await freePort();
    await launch().catch((err) => {
      if (attempt >= 4) throw err;
    });
  }
  const exit = async (signal: NodeJS.Signals) => {
    const p = proc;
    proc = undefined;
    if (p === undefined || p.exitCode !== null) return;
    const exited = new Promise((resolve) => p.once("exit", resolve));
    p.kill(signal);
    await exited;
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await exit("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
    kill: () => exit("SIGKILL"),
    restart: async () => {
      await exit("SIGKILL");
      await launch();
    },
    stall: (ms) => stall(port, ms),
    cli: (...args) => cli(port, ...args),
    stats: async () => parseStats(await cli(port, "INFO", "commandstats")),
  };
}

export interface RedisCluster {
  ports: number[];
  /** Root nodes, for `createCluster({ rootNodes })` and `new Redis.Cluster(nodes)`. */
  nodes: { host: string; port: number }[];
  cli(port: number, ...args: string[]): Promise<string>;
  /** Calls per command summed over the masters. */
  stats(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

/** Starts three masters and joins them with `redis-cli --cluster create`; resolves when every node says cluster_state:ok. */
export async function startCluster(): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), "sessionbox-cluster-"));
  const procs: ChildProcess[] = [];
  const ports: number[] = [];
  const used = new Set<number>();
  const pick = async () => {
    let port = await freePort();
    while (used.has(port)) port = await freePort();
    used.add(port);
    return port;
  };
  for (let i = 0; i < 3; i++) {
    const port = await pick();
    const bus = await pick();
    const args = ["--cluster-enabled", "yes", "--cluster-port", String(bus), "--cluster-config-file", join(dir, `nodes-${port}.conf`), "--cluster-node-timeout", "2000"];
    procs.push(await spawnServer(port, dir, args));
    ports.push(port);
  }
  const stop = async () => {
    await Promise.all(procs.filter((p) => p.exitCode === null).map((p) => new Promise((resolve) => p.once("exit", resolve).kill("SIGKILL"))));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const args = ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"];
      execFile("redis-cli", args, (err, stdout) => (err ? reject(new Error(`redis-cli --cluster create failed: ${err.message}\n${stdout}`)) : resolve()));
    });
    await waitFor(async () => (await Promise.all(ports.map((p) => cli(p, "CLUSTER", "INFO")))).every((info) => info.includes("cluster_state:ok")), 20_000, "cluster_state:ok");
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    ports,
    nodes: ports.map((port) => ({ host: "127.0.0.1", port })),
    cli,
    stats: async () => {
      const all = await Promise.all(ports.map(async (p) => parseStats(await cli(p, "INFO", "commandstats"))));
      const sum: Record<string, number> = {};
      for (const stats of all) for (const [name, calls] of Object.entries(stats)) sum[name] = (sum[name] ?? 0) + calls;
      return sum;
    },
    stop,
  };
}

/** How many calls of `command` happened between two `stats()` readings. */
export function delta(before: Record<string, number>, after: Record<string, number>, command: string): number {
  return (after[command] ?? 0) - (before[command] ?? 0);
}

/** The harness's own commands: the `INFO` that reads the stats and the `PING` that waits for a start. */
const HARNESS_COMMANDS = ["info", "ping"];

/** How many commands (of any kind but the harness's own) ran between two `stats()` readings. */
export function commandsBetween(before: Record<string, number>, after: Record<string, number>): number {
  return Object.keys(after).reduce((sum, command) => sum + (HARNESS_COMMANDS.includes(command) ? 0 : delta(before, after, command)), 0);
}

async function spawnServer(port: number, dir: string, extra: string[]): Promise<ChildProcess> {
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--enable-debug-command", "local", "--daemonize", "no", ...extra];
  const proc = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout?.on("data", (chunk) => (output += chunk));
  proc.stderr?.on("data", (chunk) => (output += chunk));
  try {
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`redis-server on port ${port} exited: ${output.slice(-500)}`);
      return (await cli(port, "PING").catch(() => "")) === "PONG";
    }, 10_000, `redis-server on port ${port}`);
  } catch (err) {
    proc.kill("SIGKILL");
    throw err;
  }
  return proc;
}

async function stall(port: number, ms: number): Promise<{ ended: Promise<void> }> {
  // A raw connection of its own, so the test's clients are not the ones waiting on the sleep.
  const socket = connect(port, "127.0.0.1");
  await new Promise((resolve) => socket.once("connect", resolve));
  const ended = new Promise<void>((resolve) => socket.once("data", () => resolve(void socket.end())));
  const seconds = String(ms / 1000);
  socket.write(`*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$${seconds.length}\r\n${seconds}\r\n`);
  await sleep(50); // the server starts the sleep as soon as it reads the command
  return { ended };
}

function parseStats(info: string): Record<string, number> {
  const stats: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats[match[1]] = Number(match[2]);
  return stats;
}

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}
