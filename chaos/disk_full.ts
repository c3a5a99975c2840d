/**
 * Chaos: the data partition fills up under a running keepwire.
 *
 * The data directory is a small tmpfs mounted for the run (needs root and `mount`). Each cycle
 * fills it to the last byte, then writes through every path an appliance writes by: journal
 * events (the bus), settings and tokens over the HTTP API. Then space returns.
 *
 * Each write attempt while full is one injection. It survived when it either succeeded and is
 * still there after recovery and a restart, or failed with a clear answer (HTTP 507/503 naming
 * the full disk; a journal write counted in `journalErrors` and shown by /api/health) while the
 * daemon kept answering. Each "space returns" is one injection too: it survived when writes
 * work again and health turns ok. A failed SQLite `integrity_check` loses every write of the run.
 */
import { join } from "node:path";
import { validateConfig } from "../mod/config/mod.ts";
import { Runtime } from "../mod/runtime.ts";
import type { Clock } from "../mod/module.ts";
import { systemClock } from "../mod/module.ts";
import { Users } from "../mod/web/users.ts";
import type { ChaosResult, ChaosScenario } from "./types.ts";

const TMPFS_SIZE = "6m";
/** How long health stays red after a failed journal write (mod/runtime.ts). */
const HEALTH_HOLD_MS = 60_000;

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const d = new TextDecoder();
    return { ok: o.success, out: (d.decode(o.stdout) + d.decode(o.stderr)).trim() };
  } catch (e) {
    return { ok: false, out: (e as Error).message };
  }
}

/** The system clock, shifted forward on demand (to pass health's 60 s hold without waiting). */
function skewedClock(): Clock & { skip(ms: number): void } {
  let skew = 0;
  return { ...systemClock, now: () => Date.now() + skew, skip: (ms) => (skew += ms) };
}

interface Daemon {
  rt: Runtime;
  base: string;
  auth: Record<string, string>;
}

async function startDaemon(dataDir: string, clock: Clock, token?: string): Promise<Daemon> {
  const rt = new Runtime(
    validateConfig({ dataDir, web: { listen: "127.0.0.1:0" }, governor: { enabled: false } }),
    { clock },
  );
  await rt.start();
  const tok = token ??
    new Users(rt.store).createToken(`chaos-${crypto.randomUUID().slice(0, 8)}`, "admin")
      .token;
  return { rt, base: `http://${rt.web!.address}`, auth: { authorization: `Bearer ${tok}` } };
}

/**
 * Fill the filesystem of `dir` to the last byte, then give `leave` bytes back (so writes get
 * part-way before they hit the wall); returns the bytes of filler.
 */
async function fill(dir: string, name: string, leave: number): Promise<number> {
  const f = await Deno.open(join(dir, name), { write: true, create: true, append: true });
  const chunk = new Uint8Array(64 * 1024).fill(0xa5);
  let written = 0;
  try {
    for (let size = chunk.length; size >= 1;) {
      try {
        written += await f.write(chunk.subarray(0, size));
      } catch {
        size = Math.floor(size / 2); // ENOSPC: top up with smaller writes
      }
    }
    if (leave > 0) await f.truncate(Math.max(0, written - leave));
  } finally {
    f.close();
  }
  return written - leave;
}

function isClearFullAnswer(status: number, body: string): boolean {
  return (status === 507 || status === 503) && /full|space/i.test(body);
}

async function fetchText(
  url: string,
  init: RequestInit,
): Promise<{ status: number; body: string } | string> {
  try {
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
    return { status: r.status, body: await r.text() };
  } catch (e) {
    return `no answer: ${(e as Error).message}`;
  }
}

/** The scenario. */
export const scenario: ChaosScenario = {
  name: "disk_full",
  description:
    "fills the data partition (tmpfs) under a running daemon and writes events, settings and " +
    "tokens; checks clear errors, SQLite integrity, no acknowledged write lost, and recovery " +
    "when space returns",
  async run({ bounded, log }): Promise<ChaosResult> {
    if (Deno.build.os !== "linux" || Deno.uid() !== 0) {
      throw new Error("disk_full needs root on Linux (it mounts a tmpfs as the data partition)");
    }
    const cycles = bounded ? 4 : 20;
    const writesPerCycle = bounded ? 100 : 400;
    const mnt = await Deno.makeTempDir({ prefix: "kw-chaos-full-" });
    const dataDir = join(mnt, "data");
    const clock = skewedClock();
    let mounted = false;
    let d: Daemon | undefined;
    let injected = 0;
    let survived = 0;
    let lost = 0;
    const problems: string[] = [];
    const note = (why: string) => {
      if (problems.length < 8) problems.push(why);
      log(`LOST: ${why}`);
    };
    /** An injection that broke an invariant. */
    const lose = (why: string) => (lost++, note(why));
    /** A later check shows `n` injections counted as survived did not (moves them to lost). */
    const demote = (n: number, why: string) => {
      const k = Math.min(n, survived);
      survived -= k;
      lost += k;
      note(why);
    };
    /** Writes acknowledged while the disk was full: checked after recovery and restart. */
    const ackedEvents = new Map<number, string>();
    let failedClearly = 0;
    try {
      const m = await run("mount", ["-t", "tmpfs", "-o", `size=${TMPFS_SIZE}`, "kwchaos", mnt]);
      if (!m.ok) throw new Error(`mount tmpfs failed: ${m.out}`);
      mounted = true;
      d = await startDaemon(dataDir, clock);
      const token = d.auth.authorization.slice("Bearer ".length);
      const api = (path: string, init: RequestInit = {}) =>
        fetchText(`${d!.base}${path}`, {
          ...init,
          headers: { ...d!.auth, "content-type": "application/json", ...(init.headers ?? {}) },
        });
      const payload = "x".repeat(2048);

      for (let c = 0; c < cycles; c++) {
        // Written before the disk fills: must all be there at the end.
        for (let i = 0; i < 10; i++) {
          const e = d.rt.bus.publishUntyped({
            module: "chaos",
            kind: "chaos.disk_full_before",
            severity: "notice",
            payload: { c, i },
          });
          if (e && e.id > 0) ackedEvents.set(e.id, `before ${c}/${i}`);
        }
        // Make the fault bite: a truncated WAL has no room left to reuse. Even cycles fill to
        // the last byte; odd ones leave 48 KiB, so writes succeed until one hits the wall.
        d.rt.store.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        const leave = c % 2 ? 48 * 1024 : 0;
        const filled = await fill(mnt, `filler-${c}`, leave);
        log(`cycle ${c + 1}/${cycles}: partition full (${filled} bytes of filler, ${leave} free)`);
        const errorsBefore = d.rt.bus.journalErrors;
        for (let i = 0; i < writesPerCycle; i++) {
          injected++;
          const kind = i % 4;
          if (kind < 2) {
            const e = d.rt.bus.publishUntyped({
              module: "chaos",
              kind: "chaos.disk_full_write",
              severity: "notice",
              payload: { c, i, payload },
            });
            if (e && e.id > 0) {
              ackedEvents.set(e.id, `${c}/${i}`);
              survived++;
            } else if (d.rt.bus.journalErrors > errorsBefore) {
              failedClearly++;
              survived++;
            } else lose(`event ${c}/${i}: neither stored nor counted as a journal error`);
          } else if (kind === 2) {
            const value = `c${c}i${i}`;
            const r = await api("/api/settings", {
              method: "PUT",
              body: JSON.stringify({ banner: value }),
            });
            if (typeof r === "string") lose(`PUT /api/settings: ${r}`);
            else if (r.status === 200) survived++;
            else if (isClearFullAnswer(r.status, r.body)) (failedClearly++, survived++);
            else lose(`PUT /api/settings on a full disk: ${r.status} ${r.body.slice(0, 160)}`);
          } else {
            const r = await api("/api/tokens", {
              method: "POST",
              body: JSON.stringify({ name: `full-${c}-${i}`, role: "viewer" }),
            });
            if (typeof r === "string") lose(`POST /api/tokens: ${r}`);
            else if (r.status === 201) survived++;
            else if (isClearFullAnswer(r.status, r.body)) (failedClearly++, survived++);
            else lose(`POST /api/tokens on a full disk: ${r.status} ${r.body.slice(0, 160)}`);
          }
        }
        // The daemon answers and says why it is unhealthy.
        const h = await api("/api/health");
        if (typeof h === "string") demote(1, `/api/health while full: ${h}`);
        else if (d.rt.bus.journalErrors > errorsBefore && h.status !== 503) {
          demote(1, `/api/health while journal writes fail: ${h.status} (want 503)`);
        }

        // Space returns.
        injected++;
        await Deno.remove(join(mnt, `filler-${c}`));
        clock.skip(HEALTH_HOLD_MS + 1000);
        const e = d.rt.bus.publishUntyped({
          module: "chaos",
          kind: "chaos.disk_full_recovered",
          severity: "notice",
          payload: { c },
        });
        const put = await api("/api/settings", {
          method: "PUT",
          body: JSON.stringify({ banner: `recovered ${c}` }),
        });
        const h2 = await api("/api/health");
        const healthOk = typeof h2 !== "string" && h2.status === 200;
        if (e && e.id > 0 && typeof put !== "string" && put.status === 200 && healthOk) {
          ackedEvents.set(e.id, `recovered ${c}`);
          survived++;
        } else {
          lose(
            `no recovery after space returned: event id ${e?.id}, PUT ${
              typeof put === "string" ? put : put.status
            }, health ${typeof h2 === "string" ? h2 : `${h2.status} ${h2.body.slice(0, 200)}`}`,
          );
        }
      }

      // Everything acknowledged is still there, the database is intact, also after a restart.
      const check = (when: string) => {
        const ic = d!.rt.store.db.prepare("PRAGMA integrity_check").all() as {
          integrity_check: string;
        }[];
        const verdict = ic.map((r) => r.integrity_check).join("; ");
        if (verdict !== "ok") {
          // a corrupt database loses everything the run wrote
          demote(survived, `integrity_check ${when}: ${verdict.slice(0, 200)}`);
          return;
        }
        let missing = 0;
        for (const [id, tag] of ackedEvents) {
          const row = d!.rt.store.db.prepare("SELECT payload FROM events WHERE id = ?").get(id) as
            | { payload: string }
            | undefined;
          const i = tag.split("/")[1];
          if (!row || (i !== undefined && !row.payload.includes(`"i":${i}`))) {
            missing++;
          }
        }
        if (missing) demote(missing, `${missing} acknowledged events missing ${when}`);
        const banner = (d!.rt.store.getSetting("ui") as { banner?: string } | undefined)?.banner;
        if (banner !== `recovered ${cycles - 1}`) {
          demote(1, `settings ${when}: banner ${JSON.stringify(banner)}`);
        }
      };
      check("after recovery");
      await d.rt.stop("chaos disk_full restart");
      d = await startDaemon(dataDir, clock, token);
      check("after restart");
      const after = await api("/api/health");
      if (typeof after === "string" || after.status !== 200) {
        demote(1, `health after restart: ${typeof after === "string" ? after : after.status}`);
      }
    } finally {
      if (d) await d.rt.stop("chaos disk_full done").catch(() => {});
      if (mounted) {
        const u = await run("umount", [mnt]);
        if (!u.ok) await run("umount", ["-l", mnt]);
      }
      await Deno.remove(mnt, { recursive: true }).catch(() => {});
    }
    return {
      injected,
      survived,
      lost,
      notes: `writes on a full ${TMPFS_SIZE} tmpfs data partition, ${cycles} fill/free cycles: ` +
        `${failedClearly} refused clearly, ${ackedEvents.size} acked events kept, ` +
        `integrity_check ${problems.some((p) => p.startsWith("integrity")) ? "FAILED" : "ok"}` +
        (problems.length ? `; ${problems.join(" | ")}` : ""),
    };
  },
};
