/**
 * SPEC §9: csrf-sync in session mode (the token kept in req.session) on every store, as under
 * express-session (the control, in the same test): a form's token is accepted, a missing or
 * wrong one is refused with 403.
 */
import express from "express";
import { csrfSync } from "csrf-sync";
import { Browser, closeServers, serveForTest } from "./helpers/apps";
import { CONTROL, forEachStore, type StoreUnderTest } from "./helpers/every-store";

afterEach(closeServers);

async function formRoundTrip(store: StoreUnderTest): Promise<unknown> {
  const { csrfSynchronisedProtection, generateToken } = csrfSync();
  const app = express();
  app.use(express.json());
  app.use(store.middleware());
  app.get("/form", (req, res) => res.json({ token: generateToken(req) }));
  app.post("/submit", csrfSynchronisedProtection, (_req, res) => res.json({ ok: true }));
  app.use((err: { status?: number; message: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) =>
    res.status(err.status ?? 500).json({ error: err.message }),
  );
  const { url } = await serveForTest(app);
  const browser = new Browser(url);
  const none = await browser.post("/submit", (t) => t.send({}));
  const { token } = (await browser.get("/form")).body as { token: string };
  const missing = await browser.post("/submit", (t) => t.send({}));
  const wrong = await browser.post("/submit", (t) => t.set("x-csrf-token", `${token}x`).send({}));
  const right = await browser.post("/submit", (t) => t.set("x-csrf-token", token).send({}));
  const stranger = new Browser(url);
  const stolen = await stranger.post("/submit", (t) => t.set("x-csrf-token", token).send({}));
  return { none: none.status, token: typeof token === "string" && token.length > 0, missing: missing.status, wrong: wrong.status, right: [right.status, right.body], stolen: stolen.status };
}

forEachStore((store) => {
  it("the session's token is accepted; a missing, wrong or foreign one is refused with 403", async () => {
    const [ours, control] = await Promise.all([formRoundTrip(store), formRoundTrip(CONTROL)]);
    expect(control).toEqual({ none: 403, token: true, missing: 403, wrong: 403, right: [200, { ok: true }], stolen: 403 });
    expect(ours).toEqual(control);
  });
});
