/**
 * The lifecycle over `node:http2`'s compatibility API (SPEC §3.9): Http2ServerRequest and
 * Http2ServerResponse, plain and under Connect, with a real `node:http2` client.
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import connect from "connect";
import { CookieStore, type SessionObject, sessions, type SessionStore } from "../lib";
import { memoryStore, SECRET, SlowStore } from "./helpers/test-stores";

type Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
interface Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

const servers: http2.Http2Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
});

async function listen(server: http2.Http2Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** One GET over a new HTTP/2 connection, failing after 5 s. */
async function get(url: string, path: string, cookie?: string): Promise<Answer> {
  const client = http2.connect(url);
  try {
    return await new Promise<Answer>((resolve, reject) => {
      const stream = client.request({ ":path": path, ...(cookie ? { cookie } : {}) });
      stream.setTimeout(5000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
      let headers: http2.IncomingHttpHeaders = {};
      let body = "";
      stream.on("response", (h) => (headers = h));
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => (body += chunk));
      stream.on("end", () => resolve({ status: Number(headers[":status"]), headers, body }));
      stream.on("close", () => reject(new Error(`the stream closed without an answer for ${path}`)));
      stream.on("error", reject);
      client.on("error", reject);
    });
  } finally {
    client.close();
  }
}

/** The cookie header a browser would send back after `answer`. */
function cookieAfter(answer: Answer): string {
  const lines = answer.headers["set-cookie"] ?? [];
  return lines.map((line) => line.split(";")[0]).join("; ");
}

const session = (req: http2.Http2ServerRequest) => (req as unknown as { session: SessionObject }).session;

/** Counts visits in the session, on `/` in one `end`, on `/stream` over two writes. */
const countVisits: Handler = (req, res) => {
  const s = session(req);
  s.visits = ((s.visits as number) ?? 0) + 1;
  if (req.url === "/stream") {
    res.write("visits ");
    res.end(String(s.visits));
  } else res.end(`visits ${s.visits}`);
};

const stores: [string, () => SessionStore][] = [
  ["CookieStore", () => new CookieStore({ secret: SECRET })],
  ["an asynchronous store (its dump answers 20 ms later)", () => new SlowStore(memoryStore())],
];

describe.each(stores)("node:http2 compatibility API with %s (SPEC §3.9)", (_, makeStore) => {
  const mounts: [string, (mw: ReturnType<typeof sessions>, handler: Handler) => http2.Http2Server][] = [
    ["plain", (mw, handler) => http2.createServer((req, res) => mw(req as never, res as never, () => handler(req, res)))],
    ["under Connect", (mw, handler) => http2.createServer(connect().use(mw as never).use(handler as never) as never)],
  ];

  it.each(mounts)("%s: the session cookie is set, sent back and the session read again, in one end and when streaming", async (_, mount) => {
    const url = await listen(mount(sessions(makeStore()), countVisits));
    for (const path of ["/", "/stream"]) {
      const first = await get(url, path);
      expect(first.status).toBe(200);
      expect(first.body).toBe("visits 1");
      expect(first.headers["set-cookie"]?.length).toBeGreaterThan(0);
      expect(first.headers.vary).toBe("Cookie");
      const second = await get(url, path, cookieAfter(first));
      expect(second.body).toBe("visits 2");
    }
  });

  it("a response whose session is never read gets no Set-Cookie and no Vary", async () => {
    const url = await listen(mounts[0][1](sessions(makeStore()), (_req, res) => res.end("untouched")));
    const answer = await get(url, "/");
    expect(answer.body).toBe("untouched");
    expect(answer.headers["set-cookie"]).toBeUndefined();
    expect(answer.headers.vary).toBeUndefined();
  });
});
