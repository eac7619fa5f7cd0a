// Builds the package: CommonJS + declarations with tsc, then a thin ES module wrapper.
//
// The ESM entry re-exports the CommonJS build instead of being a second copy of the code,
// so an app that both imports and requires the package gets one Session class, one set of
// stores (no "dual package hazard": instanceof and shared state behave).
//
// The build is written to a staging folder and swapped in at the end, so a process reading
// dist/ (the example app, a test, the benchmark) never sees it half-written.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const staging = join(root, `.dist-build-${process.pid}`);
rmSync(staging, { recursive: true, force: true });
try {
  const tsc = join(root, "node_modules/typescript/bin/tsc");
  execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json"), "--outDir", join(staging, "cjs")], { stdio: "inherit" });
  writeFileSync(join(staging, "cjs/package.json"), `{ "type": "commonjs" }\n`);

  const cjs = createRequire(import.meta.url)(join(staging, "cjs/index.js"));
  const names = Object.keys(cjs).filter((name) => name !== "default" && name !== "__esModule");
  mkdirSync(join(staging, "esm"), { recursive: true });
  writeFileSync(
    join(staging, "esm/index.mjs"),
    `import cjs from "../cjs/index.js";\n\nexport const { ${names.join(", ")} } = cjs;\nexport default cjs.sessions;\n`,
  );
  // Not `export { default }`: under "module": "nodenext" TypeScript types the default import of a
  // CommonJS file as its whole `module.exports`, while the runtime default above is `sessions`.
  writeFileSync(join(staging, "esm/index.d.mts"), `export * from "../cjs/index.js";\nexport { sessions as default } from "../cjs/index.js";\n`);

  swapIn(staging, dist);
  console.log(`built dist/cjs and dist/esm (exports: ${names.join(", ")})`);
} finally {
  rmSync(staging, { recursive: true, force: true });
}

/** Replaces `target` with `source` by two renames; a concurrent build that won the race is kept. */
function swapIn(source, target) {
  const old = `${target}.old-${process.pid}`;
  if (existsSync(target)) {
    try {
      renameSync(target, old);
    } catch (err) {
      if (err.code !== "ENOENT") throw err; // another build moved it away first
    }
  }
  try {
    renameSync(source, target);
  } catch (err) {
    // Another build put its output in place between our two renames: it built the same sources.
    if (err.code !== "ENOTEMPTY" && err.code !== "EEXIST") throw err;
  }
  rmSync(old, { recursive: true, force: true });
}
