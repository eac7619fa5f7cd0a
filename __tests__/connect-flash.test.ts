/**
 * SPEC §9: connect-flash's messages survive a redirect on every store, as under express-session
 * (the control, in the same test), and are shown once.
 */
import express from "express";
import flash from "connect-flash";
import { Browser, closeServers, serveForTest } from "./helpers/apps";
import { CONTROL, forEachStore, type StoreUnderTest } from "./helpers/every-store";

afterEach(closeServers);

/** Posts a form that flashes a message and redirects; follows the redirect, then reloads the page. */
async function flashAcrossRedirect(store: StoreUnderTest): Promise<unknown> {
  const app = express();
  app.use(store.middleware());
  app.use(flash());
  app.post("/save", (req, res) => {
    req.flash("info", "Saved.");
    req.flash("info", "Really saved.");
    res.redirect(303, "/page");
  });
  app.get("/page", (req, res) => res.json({ info: req.flash("info"), error: req.flash("error") }));
  const { url } = await serveForTest(app);
  const browser = new Browser(url);
  const posted = await browser.post("/save");
  const shown = await browser.get(posted.headers.location);
  const again = await browser.get("/page");
  return { status: posted.status, shown: shown.body, again: again.body };
}

forEachStore((store) => {
  it("a message flashed before a redirect is shown after it, once", async () => {
    const [ours, control] = await Promise.all([flashAcrossRedirect(store), flashAcrossRedirect(CONTROL)]);
    expect(control).toEqual({ status: 303, shown: { info: ["Saved.", "Really saved."], error: [] }, again: { info: [], error: [] } });
    expect(ours).toEqual(control);
  });
});
