/**
 * A rolling deploy from express-session to this package (SPEC §10): while both versions of the
 * app run over one express-session store, the same browser's requests go to either. Whatever
 * way its requests are spread, the browser sees what a single app would have shown it: no
 * change is lost, no sign-in or sign-out undone. Over each store, on real servers; then the
 * next deploy, from ExpressSessionStore to RedisStore with `{ fallback }`, the same way.
 */
import { createClient } from "redis";
import { ExpressSessionStore, RedisStore } from "../lib";
import { Browser, DAY, expressSessionApp, SECRET, type Served, served, sessionboxApp } from "./helpers/express-session-apps";
import { BACKENDS, CONNECT_REDIS, type OpenBackend } from "./helpers/express-session-backends";
import { describeNeeding } from "./helpers/servers";

/** A visit: sign in, browse, change things, sign in as someone else, sign out, come back. */
const VISIT: [method: "get" | "post", path: string, body?: object][] = [
  ["get", "/me"],
  ["post", "/count"],
  ["post", "/login", { user: "ann" }],
  ["post", "/count"],
  ["get", "/me"],
  ["post", "/set", { cart: ["apple"] }],
  ["post", "/count"],
  ["post", "/set", { cart: ["apple", "pear"], theme: "dark" }],
  ["post", "/unset?key=theme"],
  ["get", "/untouched"],
  ["get", "/me"],
  ["post", "/count"],
  ["post", "/login", { user: "bob" }],
  ["post", "/count"],
  ["post", "/set", { cart: [] }],
  ["get", "/me"],
  ["post", "/logout"],
  ["get", "/me"],
  ["post", "/count"],
  ["post", "/login", { user: "cy" }],
  ["post", "/count"],
  ["post", "/count"],
  ["get", "/me"],
];

/** Which version serves each request of the visit. */
const SPREADS: Record<string, (step: number) => "old" | "new"> = {
  "every request to the express-session app (the reference)": () => "old",
  "every request to this package": () => "new",
  "alternating, the express-session app first": (step) => (step % 2 === 0 ? "old" : "new"),
  "alternating, this package first": (step) => (step % 2 === 0 ? "new" : "old"),
  "two to one, then one to the other": (step) => (step % 3 === 2 ? "new" : "old"),
};

/** What the browser saw on each request of the visit: the status and the answer. */
async function visit(apps: Partial<Record<"old" | "new", Served>>, spread: (step: number) => "old" | "new"): Promise<{ request: string; status: number; answer: unknown }[]> {
  const browser = new Browser();
  const seen = [];
  for (const [step, [method, path, body]] of VISIT.entries()) {
    const app = apps[spread(step)] as Served;
    const res = method === "get" ? await browser.get(app, path) : await browser.post(app, path, body);
    seen.push({ request: `${method.toUpperCase()} ${path}`, status: res.status, answer: path === "/untouched" ? res.text : res.body });
  }
  return seen;
}

/** The visit, spread every way over `apps`, shows the browser what the first spread (one version) shows. */
async function expectSingleAppVisits(apps: Partial<Record<"old" | "new", Served>>): Promise<void> {
  const [reference, ...others] = await Promise.all(Object.values(SPREADS).map((spread) => visit(apps, spread)));
  expect(reference.at(-1)).toEqual({ request: "GET /me", status: 200, answer: { user: "cy", views: 2 } });
  Object.keys(SPREADS)
    .slice(1)
    .forEach((name, i) => expect({ spread: name, seen: others[i] }).toEqual({ spread: name, seen: reference }));
}

for (const backend of BACKENDS) {
  describeNeeding(backend.requirements, `a rolling deploy from express-session over ${backend.name}`, () => {
    let opened: OpenBackend;
    const apps: Partial<Record<"old" | "new", Served>> = {};

    beforeAll(async () => {
      opened = await backend.open();
      apps.old = await served(expressSessionApp(opened.old));
      apps.new = await served(sessionboxApp(new ExpressSessionStore({ store: opened.shared, secret: SECRET, maxAge: DAY })));
    });

    afterAll(async () => {
      await apps.old?.close();
      await apps.new?.close();
      await opened?.close();
    });

    it("shows the browser what a single app would, however its requests are spread over the two versions", () => expectSingleAppVisits(apps));
  });
}

describeNeeding(CONNECT_REDIS.requirements, "a rolling deploy from ExpressSessionStore to RedisStore with { fallback }, through the reverse pairing", () => {
  let opened: OpenBackend;
  let client: ReturnType<typeof createClient>;
  const apps: Partial<Record<"old" | "new", Served>> = {};

  beforeAll(async () => {
    opened = await CONNECT_REDIS.open();
    client = createClient({ url: opened.redis?.url });
    client.on("error", () => undefined);
    await client.connect();
    const before = new ExpressSessionStore({ store: opened.shared, secret: SECRET, maxAge: DAY });
    const after = new RedisStore({ client, secret: SECRET, prefix: "sessionbox:" });
    // Instances still on the previous version read both stores too, moving sessions back: nobody is signed out.
    apps.old = await served(sessionboxApp(before, { fallback: after }));
    apps.new = await served(sessionboxApp(after, { fallback: before }));
  });

  afterAll(async () => {
    await apps.old?.close();
    await apps.new?.close();
    await client?.close();
    await opened?.close();
  });

  it("shows the browser what a single app would, however its requests are spread over the two versions", () => expectSingleAppVisits(apps));
});
