import { execFileSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** The repository root. */
export const ROOT = join(__dirname, "..", "..");

/**
 * Builds dist/ unless it is newer than every source it is built from. `npm test` builds
 * first, so this only builds when a single test file is run after editing lib/.
 */
export function ensureBuilt(): void {
  const built = mtime(join(ROOT, "dist/esm/index.d.mts"));
  const sources = [
    ...readdirSync(join(ROOT, "lib"), { recursive: true, encoding: "utf8" }).map((file) => join(ROOT, "lib", file)),
    join(ROOT, "scripts/build.mjs"),
    join(ROOT, "tsconfig.json"),
    join(ROOT, "tsconfig.build.json"),
    join(ROOT, "package.json"),
  ];
  if (sources.every((file) => mtime(file) <= built)) return;
  execFileSync(process.execPath, [join(ROOT, "scripts/build.mjs")], { cwd: ROOT, stdio: "pipe" });
}

/** A file's modification time; -1 when it does not exist (a missing dist/ is always stale). */
function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}
