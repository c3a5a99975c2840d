/**
 * Replication in the HA lab (tests/e2e/ha_lab.ts): two real `keepwire run` nodes with
 * keepalived, the peer link and `ha.replication` on, paired at the start (`ha pair --code` on
 * n2, `ha pair --peer` on n1: the peer link becomes HTTPS with mutual authentication and
 * everything below runs over it). In order:
 * 1. users and settings written through the active's API are on the standby when the
 *    API answers (sync); the standby refuses a change to a replicated table (409);
 * 2. kill -9 of the active while a client creates users one after another: the new
 *    active has every user whose creation was acknowledged (0 lost);
 * 3. the killed node returns as standby and is resynced (same configuration hash);
 * 4. a tail: the standby killed, a change on the active acknowledged unconfirmed (the
 *    standby gone, `continue`), the active killed, the ex-standby started alone and
 *    active (a new epoch): the returning ex-active sets that change aside in a `.kwtail`
 *    file (`repl.tail_saved`), never merges it.
 * Bounded (≤ 3 min on a busy machine); the lab removes everything it made.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { createHaLab, LAB, type NodeName, replStatus, untilLab, userNames } from "./ha_lab.ts";
import type { KwEvent } from "../../mod/events/mod.ts";
import { missingTools } from "../helpers/tools.ts";

const missing = missingTools(["ip", "keepalived", "setpriv"], { root: true });

Deno.test({
  name:
    "repl lab: paired over HTTPS (mutual TLS), API writes reach the standby; kill -9 of the active loses no acknowledged write; the ex-active's tail is set aside",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const started = Date.now();
    const lab = await createHaLab({
      extra: {
        peerLink: { pairId: "lab", intervalMs: 300 }, // no secret: the pairing makes one
        replication: { ackTimeoutMs: 1500 },
      },
    });
    const put = (n: NodeName, path: string, body: unknown) => lab.request(n, "PUT", path, body);
    try {
      await lab.startNode("n1");
      await lab.waitRole("n1", "active");
      await lab.startNode("n2");
      await lab.waitRole("n2", "standby");
      // pairing: a code on n2, entered on n1
      const offer = await lab.request("n2", "POST", "/api/ha/pair/code") as { code: string };
      const paired = await lab.request("n1", "POST", "/api/ha/pair", {
        peer: LAB.nodes.n2,
        code: offer.code,
      }) as { paired: boolean; peerFingerprint: string };
      assert(paired.paired);
      const p2 = await lab.get<{ paired: boolean; fingerprint: string }>("n2", "/api/ha/pair");
      assertEquals([p2.paired, p2.fingerprint], [true, paired.peerFingerprint]);
      await untilLab(async () => {
        const s1 = await lab.status("n1"), s2 = await lab.status("n2");
        return !!s1?.peerLink?.url.startsWith("https:") && !!s1.peerLink.reachable &&
          !!s2?.peerLink?.reachable;
      }, "the paired link up over https");
      await untilLab(
        async () => {
          const r = await replStatus(lab, "n2");
          return r.role === "standby" && (r.epoch ?? 0) > 0;
        },
        "n2 resynced as standby",
      );

      // 1. API writes on the active are on the standby when the API answers
      await put("n1", "/api/settings", { banner: "replicated banner" });
      for (let i = 0; i < 3; i++) {
        await lab.post("n1", "/api/users", {
          username: `first${i}`,
          password: "a long enough password",
          role: "viewer",
        });
      }
      const s2 = await lab.get<{ ui: { banner: string } }>("n2", "/api/settings");
      assertEquals(s2.ui.banner, "replicated banner");
      assertEquals((await userNames(lab, "n2")).filter((u) => u.startsWith("first")).length, 3);
      const refused = await lab.request("n2", "PUT", "/api/settings", { banner: "on standby" })
        .then(() => null, (e) => e as { status?: number; body?: unknown });
      assertEquals(refused?.status, 409, JSON.stringify(refused));
      assert(JSON.stringify(refused?.body).includes("repl_standby_read_only"));
      // both nodes show the same synced configuration (once the async frames of the pair
      // journal, which move the sequence too, are applied)
      await untilLab(
        async () =>
          JSON.stringify((await replStatus(lab, "n1")).config) ===
            JSON.stringify((await replStatus(lab, "n2")).config),
        "the same synced configuration on both nodes",
      );
      const [r1, r2] = [await replStatus(lab, "n1"), await replStatus(lab, "n2")];
      // the pair journal: the standby holds the active's events (here its user creations)
      await untilLab(async () => {
        const j = await lab.get<{ role: string; rows: { node: string; kind: string }[] }>(
          "n2",
          "/api/repl/journal?kind=auth.&limit=100",
        );
        return j.role === "standby" && j.rows.filter((e) => e.node === "n1").length >= 3;
      }, "the active's auth events in the standby's pair journal");
      console.log(
        `repl lab: n1 ${r1.role} epoch ${r1.epoch} seq ${r1.seq}, n2 ${r2.role} seq ${r2.seq}, config ${r1.config?.hash}`,
      );

      // 2. kill -9 of the active during a stream of acknowledged writes
      const acked: string[] = [];
      let stop = false;
      let writerError: unknown = null;
      const writer = (async () => {
        for (let i = 0; !stop; i++) {
          try {
            await lab.post("n1", "/api/users", {
              username: `load${i}`,
              password: "a long enough password",
              role: "viewer",
            });
            acked.push(`load${i}`);
          } catch (e) {
            writerError = e; // the node is gone: this one was never acknowledged
            return;
          }
        }
      })();
      await untilLab(
        () => {
          if (writerError) throw new Error(`writer stopped before the kill: ${writerError}`);
          return Promise.resolve(acked.length >= 20);
        },
        "20 acknowledged writes",
        60_000,
      ).catch((e) => {
        throw new Error(`${e.message} (writer: ${writerError})`);
      });
      const killAt = Date.now();
      await lab.killNode("n1", "SIGKILL");
      stop = true;
      await writer;
      await lab.waitRole("n2", "active");
      await untilLab(async () => (await replStatus(lab, "n2")).role === "primary", "n2 primary");
      const on2 = new Set(await userNames(lab, "n2"));
      const lost = acked.filter((u) => !on2.has(u));
      console.log(
        `repl lab: kill -9 of the active: ${acked.length} acknowledged user writes, ${lost.length} missing on the new active; ` +
          `n2 primary ${Date.now() - killAt} ms after the kill, epoch ${
            (await replStatus(lab, "n2")).epoch
          }`,
      );
      assertEquals(lost, [], "acknowledged writes missing on the new active");

      // 3. the killed node returns as standby and is resynced
      await lab.startNode("n1");
      await lab.waitRole("n1", "standby");
      await untilLab(async () => {
        const [a, b] = [await replStatus(lab, "n2"), await replStatus(lab, "n1")];
        return b.role === "standby" && b.epoch === a.epoch && b.config?.hash === a.config?.hash;
      }, "n1 resynced");
      assert(new Set(await userNames(lab, "n1")).has(acked.at(-1)!));

      // 4. a tail: the standby killed, a change on the active acknowledged unconfirmed, the
      //    active killed, the ex-standby started alone (it takes over, a new epoch), then the
      //    ex-active. (Not SIGSTOP or a pulled cable for the standby: a frame sent to a stopped
      //    process waits in its socket buffer, and the dead sender's kernel retransmits it when
      //    a cable is back; either way the standby applies it late — consistent, nothing to set
      //    aside. A killed standby's connection is reset, so the frame never reaches it.)
      await lab.killNode("n1", "SIGKILL");
      await put("n2", "/api/settings", { banner: "never replicated" }); // acknowledged on n2 alone
      await untilLab(
        async () => (await replStatus(lab, "n2")).link === "down",
        "n2 sees its standby gone",
      );
      await lab.killNode("n2", "SIGKILL");
      await lab.startNode("n1");
      await lab.waitRole("n1", "active", 30_000);
      await untilLab(async () => (await replStatus(lab, "n1")).role === "primary", "n1 primary");
      await lab.startNode("n2");
      await lab.waitRole("n2", "standby");
      await untilLab(async () => {
        const ev = await lab.get<{ events: KwEvent[] }>("n2", "/api/events?kind=repl.tail_saved");
        return ev.events.length > 0;
      }, "n2 sets its tail aside");
      const ev = await lab.get<{ events: KwEvent[] }>("n2", "/api/events?kind=repl.tail_saved");
      const tail = ev.events[0].payload as { file: string; frames: number };
      assert(tail.frames >= 1, JSON.stringify(tail));
      assert((await Deno.stat(tail.file)).size > 0, tail.file);
      const b2 = await lab.get<{ ui: { banner: string } }>("n2", "/api/settings");
      assertEquals(b2.ui.banner, "replicated banner", "the tail is not merged");
      console.log(
        `repl lab: tail set aside by the returning ex-active: ${tail.frames} frame(s) in ${tail.file}; ` +
          `whole run ${Date.now() - started} ms`,
      );
    } catch (e) {
      console.log(`n1 log:\n${lab.log("n1").slice(-3000)}\nn2 log:\n${lab.log("n2").slice(-3000)}`);
      for (const n of ["n1", "n2"] as const) {
        const ev = await lab.get<{ events: KwEvent[] }>(n, "/api/events?kind=repl.&limit=40")
          .catch(() => null);
        const lines = (ev?.events ?? []).reverse().map((x) =>
          `${new Date(x.time).toISOString()} ${x.kind} ${JSON.stringify(x.payload).slice(0, 300)}`
        );
        console.log(`${n} replication events:\n${lines.join("\n")}`);
        console.log(
          `${n} status: ${JSON.stringify(await replStatus(lab, n).catch((x) => String(x)))}`,
        );
      }
      throw e;
    } finally {
      await lab.close();
    }
  },
});
