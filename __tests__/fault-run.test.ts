/**
 * `npm run faults` (bench/faults.mjs), as a short smoke run of every scenario: four clients
 * for three seconds, the fault (SIGSTOP, DEBUG SLEEP, kill -9 and restarts, with and without
 * AOF) for 0.4 s. It checks that the run works and what it counts, never how fast.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Started, startNode, stopChild } from "./helpers/child";
import { ensureBuilt } from "./helpers/dist";
import { describeRedis } from "./helpers/redis";

interface Result {
  id: string;
  aof: boolean;
  losesData: boolean;
  requests: number;
  statuses: Record<string, number>;
  ok: number;
  okSentAfterFault: number;
  okInFlight: number;
  fault?: { began: number; ended: number };
  recovery: number | null;
  heapBefore: number;
  heapAfter: number;
  missing: number;
  missingSentAfterFault: number;
  missingInFlight: number;
}

describeRedis("npm run faults, as a smoke run of each scenario", () => {
  let run: Started;
  let results: Result[];
  let dir: string;

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), "sessionbox-fault-run-"));
    const env = {
      PATH: process.env.PATH,
      FAULTS_CLIENTS: "4",
      FAULTS_SECONDS: "3",
      FAULTS_FAULT_AT: "0.4",
      FAULTS_FAULT_SECONDS: "0.4",
      FAULTS_TIMEOUT: "250",
      FAULTS_JSON: join(dir, "results.json"),
    };
    // Resolves when the run exits: `ready` never matches.
    run = await startNode("bench/faults.mjs", [], env, /(?!)/);
    results = JSON.parse(readFileSync(join(dir, "results.json"), "utf8")).results;
  }, 180_000);

  afterAll(async () => {
    await stopChild(run?.child);
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs every scenario, prints the table and exits with 0", () => {
    expect(run.code).toBe(0);
    expect(results.map((r) => r.id)).toEqual(["none", "sigstop", "sleep", "kill-aof", "kill", "restart"]);
    expect(run.output).toMatch(/^\| scenario \| requests \| statuses \| p99 ms \| max ms \| recovered in ms \| heap MB before → after \| 200s missing from Redis: sent after the fault began \/ in flight then \/ all \|$/m);
    for (const name of ["no fault", "SIGSTOP for 0.4 s", "DEBUG SLEEP 0.4", "kill -9, restart after 0.4 s, AOF", "kill -9, restart after 0.4 s, no AOF", "kill -9, restart at once, no AOF"]) {
      expect(run.output).toContain(`| ${name} |`);
    }
  });

  it("answers 200 to every request without a fault, and finds each of them in Redis", () => {
    const none = results.find((r) => r.id === "none") as Result;
    expect(none.requests).toBeGreaterThan(0);
    expect(none.statuses).toEqual({ 200: none.requests });
    expect([none.missing, none.fault, none.recovery]).toEqual([0, undefined, null]);
  });

  it("finds in Redis every 200 sent after a fault began, and every 200 of the run unless Redis was killed without AOF", () => {
    expect(results.filter((r) => r.losesData).map((r) => r.id)).toEqual(["kill", "restart"]);
    for (const r of results) {
      expect([r.id, r.missingSentAfterFault]).toEqual([r.id, 0]);
      if (!r.losesData) expect([r.id, r.missing, r.missingInFlight]).toEqual([r.id, 0, 0]);
    }
  });

  it("counts requests, statuses, 200s after the fault, recovery and the heap before and after for each fault", () => {
    for (const r of results.filter((result) => result.id !== "none")) {
      expect(Object.values(r.statuses).reduce((sum, n) => sum + n, 0)).toBe(r.requests);
      expect(r.statuses[200]).toBe(r.ok);
      expect(r.okSentAfterFault).toBeGreaterThan(0);
      expect(r.fault?.ended).toBeGreaterThanOrEqual(r.fault?.began as number);
      expect(r.recovery).toBeGreaterThanOrEqual(0);
      expect(r.heapBefore).toBeGreaterThan(0);
      expect(r.heapAfter).toBeGreaterThan(0);
    }
  });

  it("loses, without AOF, the sessions written before Redis was killed: the run counts them", () => {
    const killed = results.find((r) => r.id === "kill") as Result;
    expect(killed.missing).toBeGreaterThan(0);
    expect(killed.missing).toBe(killed.ok - killed.okSentAfterFault - killed.okInFlight + killed.missingInFlight);
  });
});
