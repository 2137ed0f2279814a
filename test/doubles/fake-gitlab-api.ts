// fake-gitlab-api: the few GitLab REST API v4 routes the merge request note uses, on a real
// node:http server at 127.0.0.1:<random port>, following GitLab's behaviour:
//   GET  /api/v4/user                                             the token's user
//   GET  /api/v4/projects/:id/merge_requests/:iid/notes           paginated (per_page ≤ 100, Link rel="next"), sort/order_by
//   POST /api/v4/projects/:id/merge_requests/:iid/notes           {body}
//   PUT  /api/v4/projects/:id/merge_requests/:iid/notes/:note_id  {body}; 403 unless the token's user wrote the note
// Auth: PRIVATE-TOKEN or `Authorization: Bearer` of a known token; a JOB-TOKEN gets 401 on these
// routes, as CI_JOB_TOKEN cannot reach merge request endpoints. `:id` may be a number or an
// URL-encoded path. Tests seed notes, inject faults and read `notes()` and `requests`.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeUser {
  id: number;
  username: string;
}

export interface FakeNote {
  id: number;
  body: string;
  author: FakeUser;
  created_at: string;
  updated_at: string;
  system: boolean;
}

export interface FakeGitlabRequest {
  method: string;
  path: string;
  query: string;
  /** Which credential came: never its value. */
  auth: "private-token" | "bearer" | "job-token" | "none";
  status: number;
}

export interface FakeGitlabOptions {
  /** token → its user. */
  tokens: Record<string, FakeUser>;
  /** Projects by id with their path, and the merge request iids each has. */
  projects: { id: number; path: string; mergeRequests: number[] }[];
}

export interface FakeGitlabApi {
  /** The instance URL; the API is at `${url}/api/v4` (CI_API_V4_URL). */
  readonly url: string;
  readonly apiUrl: string;
  readonly requests: FakeGitlabRequest[];
  /** Fail the next `times` requests to note routes with `status`. */
  faults: { notes?: { status: number; times?: number } };
  notes(projectId: number, iid: number): FakeNote[];
  seedNote(projectId: number, iid: number, author: FakeUser, body: string): FakeNote;
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
};

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  if (!text) return {};
  if ((req.headers["content-type"] ?? "").includes("application/json")) return JSON.parse(text) as Record<string, unknown>;
  return Object.fromEntries(new URLSearchParams(text));
}

export async function startFakeGitlabApi(options: FakeGitlabOptions): Promise<FakeGitlabApi> {
  const notesByMr = new Map<string, FakeNote[]>();
  const requests: FakeGitlabRequest[] = [];
  let nextId = 1000;
  let clock = Date.parse("2026-09-01T10:00:00Z");
  const stamp = () => new Date((clock += 1000)).toISOString();
  const faults: FakeGitlabApi["faults"] = {};

  const projectOf = (raw: string) => {
    const decoded = decodeURIComponent(raw);
    return options.projects.find((p) => String(p.id) === decoded || p.path === decoded);
  };
  const list = (projectId: number, iid: number) => {
    const key = `${projectId}!${iid}`;
    if (!notesByMr.has(key)) notesByMr.set(key, []);
    return notesByMr.get(key) as FakeNote[];
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const privateToken = req.headers["private-token"];
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const jobToken = req.headers["job-token"];
    const auth: FakeGitlabRequest["auth"] = privateToken ? "private-token" : bearer ? "bearer" : jobToken ? "job-token" : "none";
    const record: FakeGitlabRequest = { method: req.method ?? "", path: url.pathname, query: url.search, auth, status: 0 };
    requests.push(record);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      json(res, status, body, headers);
    };
    void (async () => {
      const token = typeof privateToken === "string" ? privateToken : bearer;
      const user = token !== undefined ? options.tokens[token] : undefined;
      if (!user) return send(401, { message: "401 Unauthorized" });

      if (req.method === "GET" && url.pathname === "/api/v4/user") return send(200, { id: user.id, username: user.username, state: "active" });

      const match = /^\/api\/v4\/projects\/([^/]+)\/merge_requests\/(\d+)\/notes(?:\/(\d+))?$/.exec(url.pathname);
      if (!match) return send(404, { error: "404 Not Found" });
      const project = projectOf(match[1] ?? "");
      const iid = Number(match[2]);
      if (!project || !project.mergeRequests.includes(iid)) return send(404, { message: "404 Not found" });
      const fault = faults.notes;
      if (fault && (fault.times ?? 1) > 0) {
        if (fault.times !== undefined) fault.times--;
        return send(fault.status, { message: `${fault.status} injected` });
      }
      const notes = list(project.id, iid);

      if (req.method === "GET" && !match[3]) {
        const perPage = Math.min(Number(url.searchParams.get("per_page") ?? 20) || 20, 100);
        const page = Math.max(Number(url.searchParams.get("page") ?? 1) || 1, 1);
        const orderBy = url.searchParams.get("order_by") === "updated_at" ? "updated_at" : "created_at";
        const asc = url.searchParams.get("sort") === "asc";
        const sorted = [...notes].sort((a, b) => (asc ? 1 : -1) * (a[orderBy].localeCompare(b[orderBy]) || a.id - b.id));
        const slice = sorted.slice((page - 1) * perPage, page * perPage);
        const totalPages = Math.max(1, Math.ceil(sorted.length / perPage));
        const headers: Record<string, string> = {
          "x-page": String(page),
          "x-per-page": String(perPage),
          "x-total": String(sorted.length),
          "x-total-pages": String(totalPages),
        };
        if (page < totalPages) {
          const next = new URL(url);
          next.searchParams.set("page", String(page + 1));
          next.searchParams.set("per_page", String(perPage));
          headers["x-next-page"] = String(page + 1);
          headers.link = `<http://${req.headers.host}${next.pathname}${next.search}>; rel="next"`;
        }
        return send(200, slice, headers);
      }
      if (req.method === "POST" && !match[3]) {
        const body = (await readBody(req)).body;
        if (typeof body !== "string" || body === "") return send(400, { message: "400 Bad request - body is missing" });
        const now = stamp();
        const note: FakeNote = { id: nextId++, body, author: user, created_at: now, updated_at: now, system: false };
        notes.push(note);
        return send(201, note);
      }
      if (req.method === "PUT" && match[3]) {
        const note = notes.find((n) => n.id === Number(match[3]));
        if (!note) return send(404, { message: "404 Not found" });
        if (note.author.id !== user.id) return send(403, { message: "403 Forbidden" });
        const body = (await readBody(req)).body;
        if (typeof body !== "string" || body === "") return send(400, { message: "400 Bad request - body is missing" });
        note.body = body;
        note.updated_at = stamp();
        return send(200, note);
      }
      return send(405, { message: "405 Method Not Allowed" });
    })().catch((error: unknown) => send(500, { message: String(error) }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    apiUrl: `${url}/api/v4`,
    requests,
    faults,
    notes: (projectId, iid) => [...list(projectId, iid)],
    seedNote: (projectId, iid, author, body) => {
      const now = stamp();
      const note: FakeNote = { id: nextId++, body, author, created_at: now, updated_at: now, system: false };
      list(projectId, iid).push(note);
      return note;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
