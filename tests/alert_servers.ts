/**
 * Real servers for the alert tests: an SMTP server (aiosmtpd, tests/alert_smtp_sink.py;
 * mails parsed by Python's email package), an SMS gateway stand-in speaking the Ozeki NG
 * HTTP API shape, and a webhook receiver verifying with the npm `standardwebhooks` package.
 */
import { Webhook } from "standardwebhooks";
import { join } from "node:path";
import { stopChild } from "./helpers/procs.ts";

/** The python with Debian's aiosmtpd (pyenv shims may shadow it). */
export const PYTHON = "/usr/bin/python3";

/** Is aiosmtpd importable? (the tests ignore themselves naming the package when not) */
export function haveAiosmtpd(): boolean {
  try {
    const r = new Deno.Command(PYTHON, { args: ["-c", "import aiosmtpd"] })
      .outputSync();
    return r.success;
  } catch {
    return false;
  }
}

/** A mail as the SMTP server received it, parsed. */
export interface ReceivedMail {
  envelopeTo: string[];
  from: string;
  to: string;
  subject: string;
  messageId: string;
  alertId: string;
  text: string | null;
  html: string | null;
  tls: boolean;
  auth: boolean;
}

/** A free TCP port on loopback. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Wait for a condition with a generous deadline. */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A running aiosmtpd. */
export interface SmtpServer {
  port: number;
  dir: string;
  /** Parsed mails, in arrival order. */
  mails(): ReceivedMail[];
  /** Hold each DATA this many seconds before answering (null: answer at once). */
  delay(seconds: number | null): Promise<void>;
  /** A DATA was held by `delay`. */
  held(): boolean;
  /** Answer DATA with this line (e.g. "451 4.3.0 try later"), or accept again (null). */
  reply(line: string | null): Promise<void>;
  /** Stop the server (and remove `dir` when it made it). */
  stop(): Promise<void>;
}

/** Start aiosmtpd on `port` (default: a free one), writing mails into `dir`. */
export async function startSmtp(
  opts: { dir?: string; port?: number; auth?: string; starttls?: [string, string] } = {},
): Promise<SmtpServer> {
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "kw_alert_smtp_" });
  const ownDir = opts.dir === undefined;
  const port = opts.port ?? freePort();
  const args = [
    new URL("./alert_smtp_sink.py", import.meta.url).pathname,
    dir,
    "--port",
    String(port),
  ];
  if (opts.auth) args.push("--auth", opts.auth);
  if (opts.starttls) args.push("--starttls", ...opts.starttls);
  const child = new Deno.Command(PYTHON, { args, stdout: "piped", stderr: "piped" }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = Date.now() + 30_000;
  while (!out.includes("READY")) {
    const r = await Promise.race([
      reader.read(),
      new Promise<{ done: true; value: undefined }>((res) =>
        setTimeout(() => res({ done: true, value: undefined }), Math.max(0, deadline - Date.now()))
      ),
    ]);
    if (r.done) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      const err = await new Response(child.stderr).text().catch(() => "");
      throw new Error(`aiosmtpd did not start: ${out} ${err}`);
    }
    out += r.value;
  }
  reader.releaseLock();
  void child.stdout.cancel().catch(() => {});
  void child.stderr.cancel().catch(() => {});
  return {
    port,
    dir,
    mails() {
      const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".json"))
        .sort();
      return names.map((n) => JSON.parse(Deno.readTextFileSync(join(dir, n))) as ReceivedMail);
    },
    async delay(seconds) {
      if (seconds === null) await Deno.remove(join(dir, "delay")).catch(() => {});
      else await Deno.writeTextFile(join(dir, "delay"), String(seconds));
    },
    held() {
      try {
        Deno.statSync(join(dir, "delaying"));
        return true;
      } catch {
        return false;
      }
    },
    async reply(line) {
      if (line === null) await Deno.remove(join(dir, "reply")).catch(() => {});
      else await Deno.writeTextFile(join(dir, "reply"), line + "\n");
    },
    async stop() {
      await stopChild(child, 5000);
      if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** One request the SMS stand-in received. */
export interface SmsRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: string;
}

/** An Ozeki NG-shaped SMS gateway. `answer` decides each reply (default: accepted). */
export function startSmsGateway(
  opts: { user?: string; password?: string } = {},
): {
  url: string;
  requests: SmsRequest[];
  answer: (r: SmsRequest) => { status: number; body: string } | null;
  setAnswer(fn: (r: SmsRequest) => { status: number; body: string } | null): void;
  stop(): Promise<void>;
} {
  const requests: SmsRequest[] = [];
  let answer: (r: SmsRequest) => { status: number; body: string } | null = () => null;
  let n = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const u = new URL(req.url);
    const r: SmsRequest = {
      method: req.method,
      path: u.pathname,
      query: Object.fromEntries(u.searchParams),
      headers: Object.fromEntries(req.headers),
      body: await req.text(),
    };
    requests.push(r);
    const custom = answer(r);
    if (custom) return new Response(custom.body, { status: custom.status });
    if (u.pathname === "/api" && r.query.action === "sendmessage") {
      if (opts.user && (r.query.username !== opts.user || r.query.password !== opts.password)) {
        return new Response(ozeki(r.query.recipient, 1, "Invalid username or password", ""), {
          headers: { "content-type": "application/xml" },
        });
      }
      return new Response(ozeki(r.query.recipient, 0, "Message accepted for delivery", `M${++n}`), {
        headers: { "content-type": "application/xml" },
      });
    }
    return Response.json({ accepted: true, id: ++n });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    get answer() {
      return answer;
    },
    setAnswer(fn) {
      answer = fn;
    },
    stop: () => server.shutdown(),
  };
}

function ozeki(recipient: string, code: number, text: string, id: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<response>\n<action>sendmessage</action>\n<data>\n` +
    `<acceptreport>\n<statuscode>${code}</statuscode>\n<statusmessage>${text}</statusmessage>\n` +
    `<messageid>${id}</messageid>\n<recipient>${recipient}</recipient>\n</acceptreport>\n</data>\n</response>\n`;
}

/** A webhook receiver verifying every request with `standardwebhooks`. */
export function startWebhookReceiver(secret: string): {
  url: string;
  /** Verified payloads, in order. */
  received: { id: string; payload: Record<string, unknown> }[];
  /** Requests that failed verification. */
  rejected: string[];
  /** Status to answer (default 200). */
  status: number;
  stop(): Promise<void>;
} {
  const wh = new Webhook(secret);
  const state = {
    url: "",
    received: [] as { id: string; payload: Record<string, unknown> }[],
    rejected: [] as string[],
    status: 200,
    stop: async () => {},
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.text();
    const headers = Object.fromEntries(req.headers);
    try {
      const payload = wh.verify(body, headers) as Record<string, unknown>;
      if (state.status >= 200 && state.status < 300) {
        state.received.push({ id: headers["webhook-id"], payload });
      }
    } catch (e) {
      state.rejected.push((e as Error).message);
      return new Response("bad signature", { status: 400 });
    }
    return new Response(state.status === 410 ? "gone" : "ok", { status: state.status });
  });
  state.url = `http://127.0.0.1:${server.addr.port}/hook`;
  state.stop = () => server.shutdown();
  return state;
}
