/**
 * Chaos: kill -9 of keepwire at every named step of an update install and
 * activation (mod/update/failpoints.ts), in `restart` mode on file slots with a
 * JSON boot env (GRUB scheme).
 *
 * One run per step (the rollback step is reached by a kill on trial first):
 * `keepwire update install --offline` from slot A, then the runtime in A, then
 * boots as the launcher does them — the scheme's `select()` picks the slot, `keepwire run` starts with
 * `KEEPWIRE_SLOT`, the installed update is activated once (`POST
 * /api/update/activate`, the daemon exits for the launcher) — until a runtime
 * has passed its health gate and nothing is pending. keepwire SIGKILLs itself at
 * the step (once). The run survived when: the step was reached; slot A's
 * contents are the factory image; the slot that runs is the boot env's primary
 * and good; slot B runs only with the verified image and a committed update;
 * the update state agrees with the running slot (committed in B; idle,
 * install-failed, installed or rolled-back in A); no runtime is left.
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import { kwDaemon, MAIN } from "../tests/helpers/cli.ts";
import { daemonRequest } from "../mod/cli/client.ts";
import { createBundle, generateKeyPem, parsePrivateKey } from "../mod/update/bundle.ts";
import { updateConfigSchema } from "../mod/update/config.ts";
import { UPDATE_STEPS, type UpdateStep } from "../mod/update/failpoints.ts";
import { bootSchemeFor } from "../mod/update/slots.ts";
import { Store } from "../mod/store/mod.ts";
import { UpdateRecords } from "../mod/update/records.ts";
import type { ChaosResult, ChaosScenario } from "./types.ts";

const FACTORY = "factory image A\n";

interface Run {
  /** Steps to kill at (once each). */
  kill: UpdateStep[];
  /** The step that must be reached. */
  step: UpdateStep;
}

function plan(): Run[] {
  return UPDATE_STEPS.map((step) =>
    step === "start.rolled_back" ? { kill: ["start.trying", step], step } : { kill: [step], step }
  );
}

async function sha256File(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

/** Set up one box: slots, keyring, bundle, config, store with A good, boot env with A good. */
async function box(dir: string, image: { path: string; sha: string }, bundle: string, pub: string) {
  const slotA = join(dir, "A.img"), slotB = join(dir, "B.img");
  await Deno.writeTextFile(slotA, FACTORY);
  await Deno.writeTextFile(join(dir, "ring.pem"), pub);
  const envFile = join(dir, "bootenv.json");
  await Deno.writeTextFile(
    envFile,
    JSON.stringify({ ORDER: "A B", A_OK: "1", A_TRY: "0", B_OK: "0", B_TRY: "0" }),
  );
  const update = {
    compatible: "chaos-gw",
    keyring: join(dir, "ring.pem"),
    cmdline: join(dir, "no-cmdline"),
    bootloader: { backend: "file" as const, file: envFile },
    chunkSize: 65_536,
    slots: { rootfs: { a: { device: slotA, bootname: "A" }, b: { device: slotB, bootname: "B" } } },
    activation: { mode: "restart" as const, healthGateMs: 0 },
  };
  const cfg = join(dir, "keepwire.json");
  await Deno.writeTextFile(
    cfg,
    JSON.stringify({
      dataDir: join(dir, "data"),
      web: { listen: "127.0.0.1:0" },
      governor: { enabled: false },
      update,
    }),
  );
  await Deno.mkdir(join(dir, "data"), { recursive: true });
  const s = new Store({ path: join(dir, "data", "keepwire.db") });
  new UpdateRecords(s).put({
    bootname: "A",
    slotClass: "rootfs",
    device: slotA,
    status: "good",
    version: "1.0.0",
    compatible: "chaos-gw",
    sha256: createHash("sha256").update(FACTORY).digest("hex"),
    size: FACTORY.length,
    keyId: null,
    installedAt: 1,
    detail: null,
  });
  s.close();
  return { cfg, slotA, slotB, envFile, config: updateConfigSchema.parse(update), image, bundle };
}

type Box = Awaited<ReturnType<typeof box>>;
type Status = {
  update: { state: string; target: string | null };
  gate: { gate: string } | null;
};

/** One run: install, boots until settled; returns the problems found (empty: survived). */
async function runOnce(b: Box, dir: string, run: Run, log: (s: string) => void): Promise<string[]> {
  const markers = join(dir, "killed");
  await Deno.mkdir(markers, { recursive: true });
  const env = {
    KEEPWIRE_UPDATE_KILL_AT: run.kill.join(","),
    KEEPWIRE_UPDATE_KILL_ONCE: markers,
  };
  const problems: string[] = [];
  const install = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "update", "install", b.bundle, "--offline", "-c", b.cfg],
    env: { NO_COLOR: "1", KEEPWIRE_SLOT: "A", ...env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  if (install.signal && install.signal !== "SIGKILL") problems.push(`install: ${install.signal}`);
  const scheme = bootSchemeFor(b.config);
  let activated = false;
  let running: string | null = null;
  let final: Status | null = null;
  for (let boot = 0; boot < 8 && !final; boot++) {
    // boot 0: the runtime in A that ran during the install (already booted, its try long
    // since marked good); then each boot as the launcher / bootloader does it
    const slot = boot === 0 ? "A" : await scheme.select();
    if (!slot) continue; // the script's rescue case: tries reset, the next boot picks again
    let d: Awaited<ReturnType<typeof kwDaemon>>;
    try {
      d = await kwDaemon(["-c", b.cfg], { env: { KEEPWIRE_SLOT: slot, ...env } });
    } catch (e) {
      // killed during its start (a start step): the next boot picks again
      if (!String(e).includes("exited")) problems.push(`boot ${slot}: ${String(e).slice(0, 200)}`);
      continue;
    }
    const dataDir = join(dir, "data");
    let st: Status | null = null;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const exited = await Promise.race([
        d.child.status.then(() => true),
        new Promise<false>((r) => setTimeout(() => r(false), 50)),
      ]);
      if (exited) break;
      try {
        st = await daemonRequest<Status>(dataDir, "GET", "/api/update");
        if (st.gate?.gate === "passed") break;
      } catch { /* starting or dying */ }
    }
    if (st?.gate?.gate !== "passed") {
      const code = await Promise.race([
        d.child.status,
        new Promise<null>((r) => setTimeout(() => r(null), 30_000)),
      ]);
      if (code === null) {
        d.child.kill("SIGKILL");
        problems.push(`boot ${slot}: neither passed its gate nor exited`);
        break;
      }
      continue; // killed at a step: boot again
    }
    if (st.update.state === "installed" && !activated) {
      activated = true;
      try {
        await daemonRequest(dataDir, "POST", "/api/update/activate");
      } catch { /* killed during the activation */ }
      const code = await Promise.race([
        d.child.status,
        new Promise<null>((r) => setTimeout(() => r(null), 30_000)),
      ]);
      if (code === null) {
        d.child.kill("SIGKILL");
        problems.push("activate: the runtime did not switch");
        break;
      }
      continue;
    }
    running = slot;
    final = st;
    d.child.kill("SIGTERM");
    await d.child.status;
  }
  const reached = await Deno.stat(join(markers, run.step)).then(() => true, () => false);
  if (!reached) problems.push(`step ${run.step} was never reached`);
  if (!final || !running) {
    problems.push("did not settle within 8 boots");
    return problems;
  }
  if (await Deno.readTextFile(b.slotA) !== FACTORY) problems.push("slot A was written");
  const view = await scheme.read();
  if (view.primary !== running) problems.push(`runs ${running} but primary is ${view.primary}`);
  const rs = view.slots.find((s) => s.name === running)?.state;
  if (rs !== "good") problems.push(`the running slot ${running} is ${rs}`);
  const state = final.update.state;
  if (running === "B") {
    if (await sha256File(b.slotB) !== b.image.sha) problems.push("B runs without the image");
    if (state !== "committed") problems.push(`B runs with the update ${state}`);
  } else if (!["idle", "install-failed", "installed", "rolled-back"].includes(state)) {
    problems.push(`A runs with the update ${state}`);
  }
  log(`  ${run.step}: settled in ${running}, update ${state}`);
  return problems;
}

async function run(opts: { bounded: boolean; log: (s: string) => void }): Promise<ChaosResult> {
  const root = await Deno.makeTempDir({ prefix: "kw-chaos-upd-" });
  let injected = 0, survived = 0, lost = 0;
  try {
    const keys = await generateKeyPem();
    const signer = await parsePrivateKey(keys.privatePem);
    const imgPath = join(root, "rootfs.img");
    const img = new Uint8Array(1024 * 1024);
    for (let i = 0; i < img.length; i++) img[i] = (i * 31 + 7) & 0xff;
    await Deno.writeFile(imgPath, img);
    const bundle = join(root, "b.kwb");
    await createBundle({
      images: [{ slotClass: "rootfs", path: imgPath }],
      compatible: "chaos-gw",
      version: "2.0.0",
      keys: [signer],
      out: bundle,
    });
    const image = { path: imgPath, sha: await sha256File(imgPath) };
    const runs = plan();
    const rounds = opts.bounded ? 1 : 3;
    for (let round = 0; round < rounds; round++) {
      for (const [i, r] of runs.entries()) {
        const dir = join(root, `run-${round}-${i}`);
        await Deno.mkdir(dir);
        const b = await box(dir, image, bundle, keys.publicPem);
        injected++;
        const problems = await runOnce(b, dir, r, opts.log);
        if (problems.length) {
          lost++;
          opts.log(`  LOST at ${r.step}: ${problems.join("; ")}`);
        } else survived++;
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    }
    return {
      injected,
      survived,
      lost,
      notes: `${UPDATE_STEPS.length} named steps × ${rounds}: kill -9 at the step, then boots ` +
        `until settled; booted slot intact, boot env primary = running slot and good`,
    };
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

/** The scenario. */
export const scenario: ChaosScenario = {
  name: "update_kill",
  description: "kill -9 at every named step of an update install and activation; the box " +
    "settles in a good slot with the boot env and the update state consistent",
  run,
};
