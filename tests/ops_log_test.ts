// Events reach the OS: stderr lines with sd-daemon priority prefixes when stderr is the
// journal (JOURNAL_STREAM names it), plain otherwise; syslog datagrams (RFC 5424 / 3164)
// to a unix socket or UDP; severities below the threshold stay in keepwire's journal.
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { MAIN } from "./helpers/cli.ts";
import type { KwEvent, Severity } from "../mod/events/mod.ts";
import { logConfigSchema } from "../mod/log/config.ts";
import {
  createOsLog,
  eventText,
  stderrIsJournal,
  stderrLine,
  syslogMessage,
} from "../mod/log/os_log.ts";

function ev(severity: Severity, kind = "storage.array_degraded", time = 0): KwEvent {
  return {
    id: 1,
    time,
    module: kind.split(".")[0],
    kind,
    severity,
    payload: { array: "md0", missing: 1, note: "two words" },
  };
}

Deno.test("stderr lines: <N> priority prefixes under the journal, plain otherwise", () => {
  const prefixes = (["critical", "error", "warning", "notice", "info", "debug"] as const).map(
    (s) => stderrLine(ev(s), true).slice(0, 3),
  );
  assertEquals(prefixes, ["<2>", "<3>", "<4>", "<5>", "<6>", "<7>"]);
  assertEquals(
    stderrLine(ev("warning"), true),
    '<4>warning storage.array_degraded array=md0 missing=1 note="two words"',
  );
  assertEquals(
    stderrLine(ev("error"), false),
    'keepwire: error storage.array_degraded array=md0 missing=1 note="two words"',
  );
  assertEquals(eventText({ kind: "a.b", payload: { s: "x\ny" } }), 'a.b s="x\\ny"');
});

Deno.test("JOURNAL_STREAM counts only when it names our stderr", () => {
  const st = () => ({ dev: 25, ino: 4711 });
  assertEquals(stderrIsJournal({ JOURNAL_STREAM: "25:4711" }, st), true);
  assertEquals(stderrIsJournal({ JOURNAL_STREAM: "25:4712" }, st), false);
  assertEquals(stderrIsJournal({}, st), false);
  assertEquals(stderrIsJournal({ JOURNAL_STREAM: "junk" }, st), false);
});

Deno.test("stderr sink: threshold and rate limit", () => {
  const lines: string[] = [];
  let t = 0;
  const cfg = logConfigSchema.parse({ stderr: { maxLinesPerSecond: 3 } });
  const sinks = createOsLog(cfg, { env: {}, write: (l) => lines.push(l), now: () => t });
  sinks.handle(ev("info"));
  sinks.handle(ev("notice"));
  assertEquals(lines, [], "below warning stays in keepwire's own journal");
  for (let i = 0; i < 5; i++) sinks.handle(ev("error"));
  assertEquals([lines.length, sinks.stderrLines, sinks.stderrDropped], [3, 3, 2]);
  t = 1000;
  sinks.handle(ev("critical"));
  assertEquals(lines.at(-1)?.startsWith("keepwire: critical "), true);
});

Deno.test("syslog message formats (RFC 5424, RFC 3164)", () => {
  const e = ev("error", "storage.array_degraded", Date.UTC(2026, 0, 5, 7, 8, 9, 123));
  const o = { facility: "daemon" as const, appName: "keepwire", hostname: "gw1", pid: 42 };
  assertEquals(
    syslogMessage(e, { ...o, format: "rfc5424" }),
    '<27>1 2026-01-05T07:08:09.123Z gw1 keepwire 42 storage.array_degraded - error storage.array_degraded array=md0 missing=1 note="two words"',
  );
  const m = syslogMessage(e, { ...o, facility: "local3", format: "rfc3164" });
  assert(/^<155>Jan {2}5 \d\d:08:09 gw1 keepwire\[42\]: error storage\.array_degraded /.test(m), m);
});

async function receive(conn: Deno.DatagramConn, n: number): Promise<string[]> {
  const out: string[] = [];
  const deadline = setTimeout(() => conn.close(), 20_000);
  try {
    while (out.length < n) {
      const [data] = await conn.receive();
      out.push(new TextDecoder().decode(data));
    }
  } finally {
    clearTimeout(deadline);
  }
  return out;
}

Deno.test("syslog over a unix datagram socket the test binds, and over UDP", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-syslog-" });
  const path = `${dir}/log`;
  const unix = Deno.listenDatagram({ transport: "unixpacket", path });
  const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const udpPort = (udp.addr as Deno.NetAddr).port;
  try {
    const a = createOsLog(
      logConfigSchema.parse({
        stderr: { minSeverity: "critical" },
        syslog: { target: `unix:${path}`, minSeverity: "warning" },
      }),
      { env: {}, write: () => {}, hostname: "gw1" },
    );
    a.handle(ev("info", "x.info_only"));
    a.handle(ev("warning", "x.first"));
    a.handle(ev("critical", "x.second"));
    const got = await receive(unix, 2);
    await a.close();
    assertEquals(got.map((m) => m.split(" ")[5]), ["x.first", "x.second"]);
    assert(got[0].startsWith("<28>1 "), got[0]);
    assertEquals([a.syslog?.sent, a.syslog?.failed], [2, 0]);

    const b = createOsLog(
      logConfigSchema.parse({
        syslog: { target: `udp:127.0.0.1:${udpPort}`, format: "rfc3164", facility: "local0" },
      }),
      { env: {}, write: () => {}, hostname: "gw1" },
    );
    b.handle(ev("error", "x.udp"));
    const [m] = await receive(udp, 1);
    await b.close();
    assert(/^<131>\w{3} [ \d]\d \d\d:\d\d:\d\d gw1 keepwire\[\d+\]: error x\.udp /.test(m), m);
  } finally {
    unix.close();
    udp.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("log config: a bad syslog target is named", () => {
  const r = logConfigSchema.safeParse({ syslog: { target: "tcp:host:514" } });
  assert(!r.success);
  assertEquals(r.error.issues[0].path, ["syslog", "target"]);
  assertStringIncludes(r.error.issues[0].message, "unix:/dev/log");
});

Deno.test("keepwire run with stderr as the journal: warnings carry <N> prefixes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-journal-" });
  const cfg = `${dir}/keepwire.json`;
  await Deno.writeTextFile(
    cfg,
    JSON.stringify({
      subsystems: [{
        name: "flaky",
        kind: "process",
        command: "/bin/sh",
        args: ["-c", "exit 3"],
        readyOn: "spawn",
      }],
    }),
  );
  // what systemd does: JOURNAL_STREAM is the device:inode of the stream on stderr
  const child = new Deno.Command("/bin/sh", {
    args: [
      "-c",
      'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@"',
      "sh",
      Deno.execPath(),
      "run",
      "-A",
      MAIN,
      "run",
      "--config",
      cfg,
      "--data",
      dir,
      "--listen",
      "127.0.0.1:0",
    ],
    env: { NO_COLOR: "1", KEEPWIRE_GOVERNOR: "off" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let err = "";
  const pump = (async () => {
    for await (const c of child.stderr) err += new TextDecoder().decode(c);
  })();
  try {
    const deadline = Date.now() + 60_000;
    while (!/^<4>warning supervisor\.transition .*subsystem=flaky/m.test(err)) {
      assert(Date.now() < deadline, `no journal-prefixed warning on stderr: ${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const line of err.split("\n").filter((l) => l.includes("supervisor."))) {
      assert(/^<[0-7]>/.test(line), `line without a priority prefix: ${line}`);
    }
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await pump;
    await Deno.remove(dir, { recursive: true });
  }
});
