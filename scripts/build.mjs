// Builds the package: CommonJS + declarations with tsc, then a thin ES module wrapper.
//
// The ESM entry re-exports the CommonJS build instead of being a second copy of the code,
// so an app that both imports and requires the package gets one Session class, one set of
// stores (no "dual package hazard": instanceof and shared state behave).
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });

const cjs = createRequire(import.meta.url)(join(dist, "cjs/index.js"));
const names = Object.keys(cjs).filter((name) => name !== "default" && name !== "__esModule");
mkdirSync(join(dist, "esm"), { recursive: true });
writeFileSync(
  join(dist, "esm/index.mjs"),
  `import cjs from "../cjs/index.js";\n\nexport const { ${names.join(", ")} } = cjs;\nexport default cjs.sessions;\n`,
);
writeFileSync(join(dist, "esm/index.d.mts"), `export * from "../cjs/index.js";\nexport { default } from "../cjs/index.js";\n`);
writeFileSync(join(dist, "cjs/package.json"), `{ "type": "commonjs" }\n`);
console.log(`built dist/cjs and dist/esm (exports: ${names.join(", ")})`);
