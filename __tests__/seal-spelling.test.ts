/**
 * A CookieStore cookie has exactly one spelling: the one the store wrote (SPEC §4, issue 19).
 * Any other spelling of the same seal (base64url with other unused bits or a dangling
 * character, percent-escapes, chunk envelopes cut or counted differently) is an altered cookie,
 * and an altered cookie gives a new empty session, even when it would decode to the same bytes.
 */
import { randomBytes } from "node:crypto";
import request from "supertest";
import { CookieStore } from "../lib";
import { Jar, SECRET, sessionApp, useServers } from "./helpers/session-cookies";

const start = useServers();
const DEADLINE = { deadline: 10_000 };
const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** Random, incompressible ASCII of exactly `n` characters. */
function blob(n: number): string {
  return randomBytes(n).toString("base64url").slice(0, n);
}

describe.each([true, false])("CookieStore, one spelling per seal (encrypt: %p)", (encrypt) => {
  /** Signs in with `data` and returns the server, the session's id and the cookies the browser keeps. */
  async function login(data: object) {
    const server = await start(sessionApp(new CookieStore({ secret: SECRET, encrypt })));
    const res = await request(server).post("/write").send(data).timeout(DEADLINE);
    expect(res.status).toBe(200);
    return { server, id: res.body.id as string, jar: new Jar().take(res) };
  }

  /** The session a request with this Cookie header gets. */
  async function sessionFor(server: Parameters<typeof request>[0], cookie: string): Promise<Record<string, unknown>> {
    const res = await request(server).get("/read").set("Cookie", cookie).timeout(DEADLINE);
    expect(res.status).toBe(200);
    return res.body;
  }

  /** Signs in until the seal's length leaves `remainder` when divided by 4 (the padding varies with the data's length). */
  async function loginWithSealLength(remainder: number) {
    for (let pad = 0; pad < 8; pad++) {
      const signedIn = await login({ user: "ann", pad: "x".repeat(pad) });
      const seal = signedIn.jar.get("session") as string;
      if ((encrypt ? seal : seal.slice(0, seal.lastIndexOf("."))).length % 4 === remainder) return { ...signedIn, seal };
    }
    throw new Error(`no seal length with remainder ${remainder}`);
  }

  it("opens the cookie exactly as it was written", async () => {
    const { server, id, jar } = await login({ user: "ann" });
    expect(await sessionFor(server, jar.header())).toEqual({ id, user: "ann" });
  });

  it.each([2, 3])("gives a new empty session for base64url whose unused last bits changed (length 4k+%i)", async (remainder) => {
    const { server, id, seal } = await loginWithSealLength(remainder);
    // The base64url part: the whole seal, or the payload before the signature.
    const end = encrypt ? seal.length : seal.lastIndexOf(".");
    const last = BASE64URL.indexOf(seal[end - 1]);
    const other = `${seal.slice(0, end - 1)}${BASE64URL[last ^ 1]}${seal.slice(end)}`; // the lowest bit is unused at both lengths
    expect(Buffer.from(other.slice(0, end), "base64url")).toEqual(Buffer.from(seal.slice(0, end), "base64url"));
    expect(await sessionFor(server, `session=${seal}`)).toMatchObject({ id, user: "ann" });
    const read = await sessionFor(server, `session=${other}`);
    expect(read).toEqual({ id: expect.any(String) });
    expect(read.id).not.toBe(id);
  });

  it("gives a new empty session for base64url with a dangling character (length 4k+1)", async () => {
    const { server, id, seal } = await loginWithSealLength(0);
    const end = encrypt ? seal.length : seal.lastIndexOf(".");
    const other = `${seal.slice(0, end)}A${seal.slice(end)}`;
    expect(Buffer.from(other.slice(0, end + 1), "base64url")).toEqual(Buffer.from(seal.slice(0, end), "base64url"));
    const read = await sessionFor(server, `session=${other}`);
    expect(read).toEqual({ id: expect.any(String) });
    expect(read.id).not.toBe(id);
  });

  it("gives a new empty session for a seal spelled with percent-escapes", async () => {
    const { server, id, jar } = await login({ user: "ann" });
    const seal = jar.get("session") as string;
    const escaped = `%${seal.charCodeAt(0).toString(16).toUpperCase()}${seal.slice(1)}`;
    const read = await sessionFor(server, `session=${escaped}`);
    expect(read).toEqual({ id: expect.any(String) });
    expect(read.id).not.toBe(id);
  });

  describe("chunk envelopes", () => {
    /** Signs in with a session that takes three chunk cookies; returns the joined seal too. */
    async function chunked() {
      const signedIn = await login({ blob: blob(7000) });
      expect(signedIn.jar.names()).toEqual(["session", "session.1", "session.2"]);
      const [first, second, third] = ["session", "session.1", "session.2"].map((name) => signedIn.jar.get(name) as string);
      expect(first).toMatch(/^~3~/);
      return { ...signedIn, parts: [first.slice(3), second, third] };
    }

    /** The Cookie header of `parts` under `head`, as chunk cookies. */
    function envelope(head: string, parts: string[]): string {
      return parts.map((part, i) => (i === 0 ? `session=${head}${part}` : `session.${i}=${part}`)).join("; ");
    }

    it("opens the chunks as they were written", async () => {
      const { server, id, parts } = await chunked();
      expect(await sessionFor(server, envelope("~3~", parts))).toMatchObject({ id });
    });

    it("gives a new empty session when a chunk boundary moved, the chunks joining to the same seal", async () => {
      const { server, id, parts } = await chunked();
      const moved = [parts[0].slice(0, -10), parts[0].slice(-10) + parts[1], parts[2]];
      expect(moved.join("")).toBe(parts.join(""));
      const read = await sessionFor(server, envelope("~3~", moved));
      expect(read).toEqual({ id: expect.any(String) });
      expect(read.id).not.toBe(id);
    });

    it("gives a new empty session when the head counts an extra, empty chunk", async () => {
      const { server, id, parts } = await chunked();
      const read = await sessionFor(server, envelope("~4~", [...parts, ""]));
      expect(read).toEqual({ id: expect.any(String) });
      expect(read.id).not.toBe(id);
    });

    it("gives a new empty session when the chunks are counted fewer, one holding two", async () => {
      const { server, id, parts } = await chunked();
      const read = await sessionFor(server, envelope("~2~", [parts[0], parts[1] + parts[2]]));
      expect(read).toEqual({ id: expect.any(String) });
      expect(read.id).not.toBe(id);
    });

    it("gives a new empty session for a seal that fits one cookie sent as chunks", async () => {
      const { server, id, jar } = await login({ user: "ann" });
      const seal = jar.get("session") as string;
      expect(await sessionFor(server, `session=${seal}`)).toMatchObject({ id });
      const read = await sessionFor(server, envelope("~2~", [seal.slice(0, 20), seal.slice(20)]));
      expect(read).toEqual({ id: expect.any(String) });
      expect(read.id).not.toBe(id);
    });
  });
});
