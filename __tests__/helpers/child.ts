import { type ChildProcess, spawn } from "node:child_process";
import { ROOT } from "./dist";

/** A Node script started by `startNode`. */
export interface Started {
  child: ChildProcess;
  /** What it has printed, stdout and stderr together (it keeps growing while the script runs). */
  output: string;
  /** The first capture of the `ready` pattern once printed (the address or port it listens on). */
  ready?: string;
  /** Its exit code, once it has exited. */
  code?: number | null;
}

/**
 * Runs `node script ...args` in the repository root with `env` (a key set to `undefined` is left
 * out). Resolves once its output matches `ready` (`ready` then holds the first capture), or once
 * it exits before that (`code` tells how).
 */
export function startNode(script: string, args: string[], env: Record<string, string | undefined>, ready: RegExp): Promise<Started> {
  const childEnv: NodeJS.ProcessEnv = { ...env };
  for (const key of Object.keys(childEnv)) if (childEnv[key] === undefined) delete childEnv[key];
  const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  const started: Started = { child, output: "" };
  return new Promise((resolve) => {
    const collect = (chunk: Buffer) => {
      started.output += chunk.toString();
      const match = ready.exec(started.output);
      if (match && started.ready === undefined) {
        started.ready = match[1];
        resolve(started);
      }
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    child.on("exit", (code) => {
      started.code = code;
      resolve(started);
    });
  });
}

/**
 * Stops a child process with SIGTERM and resolves with its exit code once it has exited
 * (at once when there is none, or it has already exited).
 */
export function stopChild(child: ChildProcess | undefined): Promise<number | null> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child?.exitCode ?? null);
  return new Promise((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.kill("SIGTERM");
  });
}
