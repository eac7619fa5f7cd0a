/**
 * The published package, as users get it: `npm pack`, then install the tarball into
 * throw-away ESM, CommonJS and TypeScript projects and use it the way the README says.
 *
 * Installs pin the versions in this repository's node_modules and prefer npm's cache, so
 * after `npm ci` they rarely touch the network.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ensureBuilt, ROOT } from "./helpers/dist";

jest.setTimeout(240_000);

const exec = promisify(execFile);
const SECRET = "a-test-secret-that-is-at-least-32-characters-long";

let work: string;
let tarball: string;
let packed: string[];

beforeAll(async () => {
  ensureBuilt();
  work = mkdtempSync(join(tmpdir(), "sessionbox-pack-"));
  // --ignore-scripts: dist/ is already built; rebuilding here would race other test files reading it.
  const { stdout } = await npm(["pack", "--json", "--ignore-scripts", "--pack-destination", work], ROOT);
  const [info] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
  tarball = join(work, info.filename);
  packed = info.files.map((file) => file.path);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("npm pack", () => {
  it("ships the CommonJS build with declarations, the ESM wrapper and the README", () => {
    expect(packed).toEqual(
      expect.arrayContaining(["package.json", "README.md", "dist/cjs/index.js", "dist/cjs/index.d.ts", "dist/esm/index.mjs", "dist/esm/index.d.mts"]),
    );
  });

  it("ships no tests, sources, examples or build scripts", () => {
    expect(packed.filter((file) => /^(__tests__|lib|examples|scripts|bench|\.ci)\//.test(file))).toEqual([]);
  });
});

describe("an ES module project", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await project("esm", { type: "module" }, ["express"]);
    writeFileSync(join(dir, "app.js"), appSource("esm"));
  });

  it("imports { sessions, CookieStore } and round-trips a session through Express", async () => {
    const result = await runApp(dir);
    expect(result.setCookie).toMatch(/^session=[\w-]+; Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax$/);
    expect(result.me).toEqual({ userId: "u1", isSession: true });
  });

  it("gets `sessions` as the default export, and the same classes as require() (one copy of the code)", async () => {
    const result = await runApp(dir);
    expect(result.defaultIsSessions).toBe(true);
    expect(result.sameClassAsRequire).toBe(true);
  });
});

describe("a CommonJS project", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await project("cjs", { type: "commonjs" }, ["express"]);
    writeFileSync(join(dir, "app.js"), appSource("cjs"));
  });

  it("requires { sessions, CookieStore } and round-trips a session through Express", async () => {
    const result = await runApp(dir);
    expect(result.setCookie).toMatch(/^session=[\w-]+; Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax$/);
    expect(result.me).toEqual({ userId: "u1", isSession: true });
    expect(result.defaultIsSessions).toBe(true);
  });

  it("installs without node-redis (an optional peer dependency), and new RedisStore({ url }) then says which package to install", async () => {
    expect(existsSync(join(dir, "node_modules", "redis"))).toBe(false);
    const result = await runScript(dir, `const { RedisStore } = require("sessionbox");
try { new RedisStore({ url: "redis://127.0.0.1:1", secret: "${SECRET}" }); console.log("constructed") } catch (e) { console.log(e.name + ": " + e.message) }`);
    expect(result).toMatch(/^SessionConfigError: RedisStore: \{ url \} needs the node-redis client, which is not installed: run `npm install redis`/);
  });

  it("does not expose files outside the package's exports", async () => {
    const { stdout } = await exec(process.execPath, ["-e", `try { require("sessionbox/dist/cjs/session.js") } catch (e) { console.log(e.code) }`], { cwd: dir });
    expect(stdout.trim()).toBe("ERR_PACKAGE_PATH_NOT_EXPORTED");
  });
});

describe("a CommonJS project that installs redis beside the package", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await project("cjs-redis", { type: "commonjs" }, ["express", "redis"]);
  });

  it("gets a RedisStore({ url }) that owns a node-redis client, and closes it", async () => {
    // Port 1 on loopback: nothing listens there; the store is built and closed without a server.
    const result = await runScript(dir, `const { RedisStore } = require("sessionbox");
const store = new RedisStore({ url: "redis://127.0.0.1:1", secret: "${SECRET}", timeout: 200 });
store.close().then(() => console.log(typeof store.client.sendCommand + " " + store.client.isOpen));`);
    expect(result).toBe("function false");
  });
});

describe("a TypeScript project (module nodenext) that extends SessionData by declaration merging", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await project("ts", { type: "module" }, ["express", "typescript", "@types/express", "@types/node"]);
    for (const ext of ["mts", "cts"]) {
      writeFileSync(join(dir, `good.${ext}`), typedSource(`req.session.userId = "u1";\n  const upper: string = req.session.userId.toUpperCase();\n  res.send(upper);`));
      writeFileSync(join(dir, `bad.${ext}`), typedSource(`req.session.userId = 42;\n  res.end();`));
    }
  });

  // .mts resolves the package's "import" types (dist/esm/index.d.mts), .cts its "require" types.
  for (const [ext, kind] of [
    ["mts", "an ES module"],
    ["cts", "a CommonJS module"],
  ] as const) {
    it(`type-checks req.session.userId as a string in ${kind} (.${ext})`, async () => {
      const result = await tsc(dir, `good.${ext}`);
      expect(result.errors).toEqual([]);
      expect(result.code).toBe(0);
    });

    it(`refuses a number for req.session.userId in ${kind} (.${ext}) with TS2322`, async () => {
      const result = await tsc(dir, `bad.${ext}`);
      expect(result.code).not.toBe(0);
      expect(result.errors).toEqual([expect.stringMatching(new RegExp(`^bad\\.${ext}\\(${ASSIGNMENT_LINE},\\d+\\): error TS2322: Type 'number' is not assignable to type 'string'`))]);
    });
  }
});

/** The line of `typedSource` on which the handler body starts. */
const ASSIGNMENT_LINE = 13;

/** A typed Express app; `body` is the GET handler's body, starting on ASSIGNMENT_LINE. */
function typedSource(body: string): string {
  return `import express from "express";
import sessions, { CookieStore, type Session } from "sessionbox";

declare module "sessionbox" {
  interface SessionData {
    userId: string;
  }
}

const app = express();
app.use(sessions(new CookieStore({ secret: "${SECRET}" })));
app.get("/", (req, res) => {
  ${body}
});
export const session: (req: express.Request) => Session = (req) => req.session;
`;
}

/** An app that logs in on POST /login and reports what GET /me sees, as one JSON line on stdout. */
function appSource(kind: "esm" | "cjs"): string {
  const head =
    kind === "esm"
      ? `import express from "express";
import sessions, { sessions as named, CookieStore, Session } from "sessionbox";
import { createRequire } from "node:module";
const required = createRequire(import.meta.url)("sessionbox");
const defaultIsSessions = sessions === named;
const sameClassAsRequire = required.Session === Session && required.CookieStore === CookieStore;`
      : `const express = require("express");
const { sessions: named, CookieStore, Session } = require("sessionbox");
const defaultIsSessions = require("sessionbox").default === named;
const sameClassAsRequire = true;`;
  return `${head}
const app = express();
app.use(named(new CookieStore({ secret: "${SECRET}" })));
app.post("/login", (req, res) => {
  req.session.userId = "u1";
  res.send("ok");
});
app.get("/me", (req, res) => {
  res.json({ userId: req.session.userId ?? null, isSession: req.session instanceof Session });
});
const server = app.listen(0, "127.0.0.1", async () => {
  try {
    const base = "http://127.0.0.1:" + server.address().port;
    const login = await fetch(base + "/login", { method: "POST" });
    const setCookie = login.headers.getSetCookie();
    const cookie = setCookie.map((c) => c.split(";")[0]).join("; ");
    const me = await (await fetch(base + "/me", { headers: { cookie } })).json();
    console.log(JSON.stringify({ setCookie: setCookie.join("\\n"), me, defaultIsSessions, sameClassAsRequire }));
  } finally {
    server.close();
  }
});
`;
}

interface AppResult {
  setCookie: string;
  me: unknown;
  defaultIsSessions: boolean;
  sameClassAsRequire: boolean;
}

/** Runs `source` with node in `dir` and returns what it printed, trimmed. */
async function runScript(dir: string, source: string): Promise<string> {
  const { stdout } = await exec(process.execPath, ["-e", source], { cwd: dir, timeout: 30_000 });
  return stdout.trim();
}

async function runApp(dir: string): Promise<AppResult> {
  const { stdout } = await exec(process.execPath, ["app.js"], { cwd: dir, timeout: 30_000 });
  return JSON.parse(stdout) as AppResult;
}

/** Makes `work/<name>` with the tarball and `deps` (at this repository's versions) installed. */
async function project(name: string, fields: object, deps: string[]): Promise<string> {
  const dir = join(work, name);
  mkdirSync(dir);
  const dependencies: Record<string, string> = { sessionbox: `file:${tarball}` };
  for (const dep of deps) dependencies[dep] = installedVersion(dep);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `sessionbox-${name}-check`, private: true, ...fields, dependencies }, null, 2));
  await npm(["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], dir);
  return dir;
}

function installedVersion(dep: string): string {
  return (JSON.parse(readFileSync(join(ROOT, "node_modules", dep, "package.json"), "utf8")) as { version: string }).version;
}

async function tsc(dir: string, file: string): Promise<{ code: number; errors: string[] }> {
  const args = [join(dir, "node_modules/typescript/bin/tsc"), "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--types", "node", file];
  try {
    await exec(process.execPath, args, { cwd: dir });
    return { code: 0, errors: [] };
  } catch (err) {
    const { code, stdout } = err as { code: number; stdout: string };
    return { code, errors: stdout.split("\n").filter((line) => /error TS\d+/.test(line)) };
  }
}

/** Runs npm without the npm_* variables of an enclosing `npm test`, which would point it at this repository. */
async function npm(args: string[], cwd: string): Promise<{ stdout: string }> {
  const keep = /^npm_config_(cache|userconfig|globalconfig|registry)$/i;
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) || keep.test(key)));
  return exec("npm", args, { cwd, env, maxBuffer: 16 * 1024 * 1024, timeout: 180_000 });
}
