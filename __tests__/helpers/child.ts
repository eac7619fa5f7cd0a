import type { ChildProcess } from "node:child_process";

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
