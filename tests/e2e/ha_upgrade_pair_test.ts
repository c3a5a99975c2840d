/**
 * Rolling upgrade of an HA pair under client load (issue 13 item 8: "Rolling upgrade under
 * client load: 0 acknowledged messages lost"), in the smsgw namespace lab (smsgw_lab.ts):
 * each node runs keepwire under the restart-mode update launcher with file A/B slots; a
 * slot's image is a script that runs keepwire from a code tree, so activating the other
 * slot really swaps the running code. The new version is this checkout copied with
 * mod/version.ts bumped (the version a node reports is that constant), signed into a
 * bundle here. While the client submits at a steady rate to the service address:
 *
 * 1. three refused bundles (another device's `compatible`; the running version; a tree with
 *    one more store migration, bundled by that tree's own `keepwire bundle create`, which
 *    declares its store schema) stop the rollout at `checking`, both nodes serving, nothing
 *    installed on either;
 * 2. `POST /api/ha/upgrade` on the active: the standby installs and restarts into the new
 *    version, the active hands over, then installs and restarts itself; waited until
 *    `done`. Asserted: both nodes run the new version committed from slot B, exactly one
 *    active (never two: no `ha.dual_active` in either journal), every acknowledged message
 *    on the final active and delivered to the SMSC.
 *    Printed: duplicates, the client's failed tries and the longest gap between
 *    acknowledgements, the rollout's steps.
 *
 * Needs root, iproute2, keepalived; the lab removes everything it made.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { missingTools } from "../helpers/tools.ts";
import {
  explainRun,
  type SmsgwClientResult,
  type SmsgwPair,
  startSmsgwPair,
  until,
} from "./smsgw_lab.ts";
import type { NodeName } from "./ha_lab.ts";
import { createBundle, generateKeyPem, parsePrivateKey } from "../../mod/update/bundle.ts";
import { codeStoreSchema } from "../../mod/update/bundle_schema.ts";
import type { UpdateStatusView } from "../../mod/update/service.ts";
import type { ActivationStatus } from "../../mod/update/activation.ts";
import type { UpgradeStatus } from "../../mod/ha/upgrade.ts";
import { VERSION } from "../../mod/version.ts";

const missing = missingTools(["ip", "keepalived", "setpriv"], { root: true });
const REPO = new URL("../../", import.meta.url).pathname;
const COMPATIBLE = "kw-lab-pair";
/** The version the bundle installs: this one with the minor bumped. */
const [maj, min] = VERSION.split(".").map(Number);
const TARGET = `${maj}.${min + 1}.0`;

/** Copy the code keepwire runs from (main.ts, mod/, hw/, deno.json/lock) with `version`. */
async function codeTree(to: string, version: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  const cp = await new Deno.Command("cp", {
    args: ["-a", ...["main.ts", "mod", "hw", "deno.json", "deno.lock"].map((f) => REPO + f), to],
  }).output();
  if (!cp.success) throw new Error(`cp: ${new TextDecoder().decode(cp.stderr)}`);
  await Deno.writeTextFile(
    `${to}/mod/version.ts`,
    `/** keepwire's version (semver); the updater compares bundle versions against it. */\n` +
      `export const VERSION = "${version}";\n`,
  );
}

/** A code tree as `codeTree` makes it, with one more migration of the `history` tables. */
async function migratedTree(to: string, version: string): Promise<void> {
  await codeTree(to, version);
  const f = `${to}/mod/history/store.ts`;
  const src = await Deno.readTextFile(f);
  const end = src.indexOf("\n];", src.indexOf("export const HISTORY_MIGRATIONS"));
  if (end < 0) throw new Error(`${f}: no HISTORY_MIGRATIONS array`);
  await Deno.writeTextFile(
    f,
    `${src.slice(0, end)}\n  "CREATE TABLE history_lab_extra (x INTEGER)",${src.slice(end)}`,
  );
}

/** A slot image: a script running keepwire from `tree` with the config given as $1. */
const image = (tree: string, version: string) =>
  `#!/bin/sh\n# keepwire lab image ${version}\nexec "${Deno.execPath()}" run -A "${tree}/main.ts" run -c "$1"\n`;

type UpdateView = UpdateStatusView & { gate: ActivationStatus | null };

/** Windows of failed tries: errors closer than `gapMs` belong to one window. */
function errorWindows(times: number[], gapMs = 1000): { at: number; ms: number; n: number }[] {
  const out: { at: number; ms: number; n: number }[] = [];
  for (const t of [...times].sort((a, b) => a - b)) {
    const w = out.at(-1);
    if (w && t - (w.at + w.ms) <= gapMs) {
      w.ms = t - w.at;
      w.n++;
    } else out.push({ at: t, ms: 0, n: 1 });
  }
  return out;
}

/** The longest gap between consecutive acknowledgements within [from, to]. */
function maxAckGap(acks: number[], from: number, to: number): number {
  const a = acks.filter((t) => t >= from && t <= to).sort((x, y) => x - y);
  let gap = 0;
  for (let i = 1; i < a.length; i++) gap = Math.max(gap, a[i] - a[i - 1]);
  return gap;
}

Deno.test({
  name: "HA rolling upgrade of an smsgw pair under client load: 0 acknowledged messages lost",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const started = Date.now();
    const lines: string[] = [];
    const log = (l: string) => lines.push(`${Math.round((Date.now() - started) / 1000)} s ${l}`);
    const dir = await Deno.makeTempDir({ prefix: "kw-ha-upgrade-" });
    let pair: SmsgwPair | null = null;
    try {
      const kp = await generateKeyPem();
      await Deno.writeTextFile(`${dir}/ring.pem`, kp.publicPem);
      await codeTree(`${dir}/v2`, TARGET);
      for (const n of ["n1", "n2"] as const) {
        await Deno.mkdir(`${dir}/${n}`);
        await Deno.writeTextFile(`${dir}/${n}/A.sh`, image(REPO, VERSION));
        await Deno.writeTextFile(`${dir}/${n}/B.sh`, "");
        await Deno.writeTextFile(
          `${dir}/${n}/bootenv.json`,
          JSON.stringify({ ORDER: "A B", A_OK: "1", A_TRY: "0", B_OK: "0", B_TRY: "0" }),
        );
      }
      const signer = await parsePrivateKey(kp.privatePem);
      const bundle = async (name: string, version: string, compatible: string, tree: string) => {
        await Deno.writeTextFile(`${dir}/${name}.sh`, image(tree, version));
        const out = `${dir}/${name}.kwb`;
        await createBundle({
          images: [{ slotClass: "app", path: `${dir}/${name}.sh` }],
          compatible,
          version,
          keys: [signer],
          out,
          // the trees are copies of this checkout: its migrations
          storeSchema: codeStoreSchema(),
        });
        return out;
      };
      const v2 = await bundle("v2", TARGET, COMPATIBLE, `${dir}/v2`);
      const alien = await bundle("alien", TARGET, "another-device", `${dir}/v2`);
      const same = await bundle("same", VERSION, COMPATIBLE, REPO);
      // a new version with a store migration, bundled by its own CLI (declares its schema)
      await migratedTree(`${dir}/v3`, TARGET);
      await Deno.writeTextFile(`${dir}/v3.sh`, image(`${dir}/v3`, TARGET));
      await Deno.writeTextFile(`${dir}/key.pem`, kp.privatePem, { mode: 0o600 });
      const migrated = `${dir}/v3.kwb`;
      const made = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${dir}/v3/main.ts`, "bundle", "create"].concat(
          ["--image", `app=${dir}/v3.sh`, "--compatible", COMPATIBLE, "--version", TARGET],
          ["--key", `${dir}/key.pem`, "-o", migrated],
        ),
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      assert(made.success, `bundle create in v3: ${dec.decode(made.stderr)}`);
      assert(dec.decode(made.stdout).includes("history:2"), dec.decode(made.stdout));

      pair = await startSmsgwPair({
        rate: 20,
        log,
        launcher: true,
        config: (n: NodeName, file: string) => ({
          update: {
            compatible: COMPATIBLE,
            keyring: `${dir}/ring.pem`,
            cmdline: `${dir}/no-cmdline`,
            bootloader: { backend: "file", file: `${dir}/${n}/bootenv.json` },
            slots: {
              app: {
                a: { device: `${dir}/${n}/A.sh`, bootname: "A" },
                b: { device: `${dir}/${n}/B.sh`, bootname: "B" },
              },
            },
            activation: { mode: "restart", healthGateMs: 1_500, healthTimeoutMs: 30_000 },
            launcher: { command: ["sh", "{device}", file], rescueDelayMs: 500 },
          },
        }),
      });
      const { lab } = pair;
      const p = pair;
      const version = (n: NodeName) =>
        lab.get<{ version: string }>(n, "/api/status").then((s) => s.version);
      const rollout = (n: NodeName) =>
        lab.get<{ upgrade: UpgradeStatus | null }>(n, "/api/ha/status").then((s) => s.upgrade);
      const updateOf = (n: NodeName) => lab.get<UpdateView>(n, "/api/update");
      const roles = async () => [(await lab.status("n1"))?.role, (await lab.status("n2"))?.role];
      const traffic = async (what: string) => {
        const before = (await p.progress()).acked;
        await until(async () => (await p.progress()).acked >= before + p.rate, what, 60_000);
      };
      log(`pair up, client submitting; n1 ${await version("n1")}, n2 ${await version("n2")}`);

      // 1. refused bundles: stopped at checking, nothing changed, both serving
      for (
        const [b, why] of [
          [alien, "incompatible bundle"],
          [same, "is not newer"],
          [migrated, "changes the store schema (history 1 → 2)"],
        ] as const
      ) {
        await lab.post("n1", "/api/ha/upgrade", { bundle: b, by: "lab" });
        await until(
          async () => (await rollout("n1"))?.state === "stopped",
          `the rollout of ${b} stopped`,
          30_000,
        );
        const r = (await rollout("n1"))!;
        log(`refused ${b.split("/").at(-1)}: ${r.stoppedAt}: ${r.reason}`);
        assertEquals(r.stoppedAt, "checking", JSON.stringify(r));
        assert(r.reason?.includes(why), JSON.stringify(r));
        assertEquals(await roles(), ["active", "standby"]);
        for (const n of ["n1", "n2"] as const) {
          assertEquals(await version(n), VERSION);
          const u = await updateOf(n);
          assertEquals(u.booted?.bootname, "A");
          assertEquals(u.slots.find((s) => s.bootname === "B")?.version ?? null, null);
        }
        await traffic("traffic after a refused rollout");
      }

      // 2. the rolling upgrade under load
      const t0 = Date.now();
      await lab.post("n1", "/api/ha/upgrade", { bundle: v2, by: "lab" });
      let last: UpgradeStatus | null = null;
      let seen = "";
      await until(
        async () => {
          // n1 restarts in local_activating: no answer for a while is expected
          last = await rollout("n1").catch(() => last);
          if (last && last.state !== seen) log(`rollout: ${seen = last.state}`);
          if (last?.state === "stopped") {
            throw new Error(`rollout stopped at ${last.stoppedAt}: ${last.reason}`);
          }
          return last?.state === "done";
        },
        "the rollout done",
        200_000,
      ).catch((e) => {
        throw new Error(`${e.message}; last ${JSON.stringify(last)}`);
      });
      const t1 = Date.now();
      log(`rollout done in ${t1 - t0} ms`);
      await until(() => p.paired("n2", "n1"), "n1 a resynced standby of n2", 90_000);
      await traffic("traffic after the rollout");

      const [n1, n2] = [await updateOf("n1"), await updateOf("n2")];
      for (const [n, u] of [["n1", n1], ["n2", n2]] as const) {
        assertEquals(await version(n), TARGET, `${n} runs ${TARGET}`);
        const b = u.slots.find((s) => s.bootname === "B")!;
        assertEquals(
          [u.booted?.bootname, b.version, b.state, b.primary, u.gate?.activation?.state],
          ["B", TARGET, "good", true, "committed"],
          `${n}: ${JSON.stringify(u)}`,
        );
      }
      assertEquals(await roles(), ["standby", "active"]);
      assertEquals(await lab.holders(), ["n2"]);

      // never two actives on the way (each node's own journal, kept across its restart)
      const dualActive: number[] = [];
      for (const n of ["n1", "n2"] as const) {
        const ev = await lab.get<{ events: unknown[] }>(n, "/api/events?kind=ha.dual_active");
        dualActive.push(ev.events.length);
      }

      const r: SmsgwClientResult = await p.finish();
      // on a failure, the context says when the missing ones were acknowledged and how
      // durable, and both nodes' role changes, dual actives, tails set aside
      await explainRun(lab, r, started, log);
      const wins = errorWindows(r.errorTimes.filter((t) => t >= t0 && t <= t1));
      const figures = {
        rolloutMs: t1 - t0,
        steps: (last as UpgradeStatus | null)?.steps.map((s) => `${s.state}+${s.at - t0}`),
        submitted: r.submitted,
        acked: r.acked,
        ackedLocalOnly: r.ackedLocalOnly,
        missing: r.missing,
        undelivered: r.undelivered,
        duplicates: r.smsc.duplicates,
        duplicateAnswers: r.duplicateAnswers,
        retriedSubmits: r.retriedSubmits,
        failedTries: r.errors,
        errorWindowsMs: wins.map((w) => `${w.ms} (${w.n} tries, +${w.at - t0})`),
        maxAckGapMs: maxAckGap(r.ackTimes, t0, t1),
        dualActiveEvents: dualActive,
        loadavg: Deno.loadavg().map((x) => x.toFixed(2)).join(" "),
        seconds: Math.round((Date.now() - started) / 1000),
      };
      console.log(`HA-UPGRADE ${JSON.stringify(figures)}`);
      const ctx = `\n${lines.join("\n")}\n${JSON.stringify(r.missingIds)}`;
      assertEquals(r.missing, 0, `acknowledged messages missing on the final active${ctx}`);
      assertEquals(r.undelivered, 0, `acknowledged messages never delivered${ctx}`);
      assert(r.acked > 0 && r.acked === r.submitted, `every submit acknowledged${ctx}`);
      assertEquals(dualActive, [0, 0], `never both active${ctx}`);
    } catch (e) {
      for (const n of ["n1", "n2"] as const) {
        lines.push(`${n} log tail: ${pair?.lab.log(n).slice(-3000)}`);
      }
      console.log(lines.join("\n"));
      throw e;
    } finally {
      await pair?.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
