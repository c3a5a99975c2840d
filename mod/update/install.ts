/**
 * Install a bundle into the other slot, streaming. Order of operations:
 *
 * 1. read header, manifest, signature; verify the signature (keyring), the
 *    compatible string and the version (no downgrade unless allowed), the slot
 *    classes and sizes — nothing has been written yet;
 * 2. mark the target slot bad in the boot env (boot order untouched);
 * 3. per image: stream the payload into the slot (reads, sha256 and writes
 *    overlapped), fsync, compare the sha256 (optionally read back);
 * 4. run the post-install hook, if any;
 * 5. record the slot status in the store;
 * 6. make the target primary in the boot env in ONE atomic write.
 *
 * A failure (or kill -9) before step 6 leaves the booted slot, its status and
 * the boot order as they were; the target stays marked bad.
 * @module
 */
import type { EventBus } from "../events/mod.ts";
import type {} from "./events.ts";
import type { Clock } from "../module.ts";
import {
  type BundleHead,
  bundleSize,
  type Manifest,
  type PublicKey,
  readBundleHead,
  verifyBundleHead,
} from "./bundle.ts";
import type { BootScheme } from "../../hw/boot/ab.ts";
import type { UpdateConfig } from "./config.ts";
import { bootOp, errorMessage, UpdateError } from "./errors.ts";
import type { UpdateRecords } from "./records.ts";
import type { InstallPhase, UpdateStateMachine } from "./state.ts";
import { updateStep } from "./failpoints.ts";
import { compareSemver } from "./semver.ts";
import { type Booted, otherSlot, type Slot, slotCapacity, slotOf } from "./slots.ts";
import { type ByteSource, fileSource, hashCopy, readFull } from "./stream.ts";

export type { InstallPhase } from "./state.ts";

/** Progress of an install (events, API, CLI). */
export interface InstallProgress {
  /** Phase. */
  phase: InstallPhase;
  /** 0..100. */
  percent: number;
  /** Payload bytes written. */
  bytes: number;
  /** Payload bytes in total (0 until the manifest is verified). */
  total: number;
  /** Target bootname, once known. */
  target?: string;
  /** Bundle version, once verified. */
  version?: string;
  /** Human text. */
  message: string;
  /** Error text (phase failed). */
  error?: string;
  /** Error code (phase failed). */
  code?: string;
}

/** What an install needs from the module. */
export interface InstallDeps {
  /** The `update` config. */
  config: UpdateConfig;
  /** Store tables. */
  records: UpdateRecords;
  /** The update lifecycle. */
  state: UpdateStateMachine;
  /** Event bus. */
  bus: EventBus;
  /** Clock. */
  clock: Clock;
  /** The A/B boot scheme. */
  boot: BootScheme;
  /** The booted slot. */
  booted: () => Promise<Booted>;
  /** The keyring. */
  keyring: () => Promise<PublicKey[]>;
}

/** One install request. */
export interface InstallRequest {
  /** Bundle bytes. */
  source: ByteSource;
  /** Name of the source for messages (file, URL, "upload"). */
  what: string;
  /** Accept an older version. */
  allowDowngrade?: boolean;
  /** Abort. */
  signal?: AbortSignal;
  /** Progress callback. */
  onProgress?: (p: InstallProgress) => void;
}

/** Result of a successful install. */
export interface InstallResult {
  /** Slot written and made primary. */
  target: string;
  /** Slot booted during the install. */
  booted: string;
  /** Installed version. */
  version: string;
  /** Key that signed the bundle. */
  keyId: string;
  /** Images written. */
  images: { slotClass: string; device: string; size: number; sha256: string }[];
  /** Payload bytes. */
  bytes: number;
  /** Wall time. */
  durationMs: number;
}

/** Verified facts about a bundle before anything is written. */
export interface Preflight {
  /** Header. */
  head: BundleHead;
  /** Verified manifest. */
  manifest: Manifest;
  /** Signing key. */
  keyId: string;
  /** Booted slot. */
  booted: Booted;
  /** Target bootname. */
  target: string;
  /** Target slots per image, in manifest order. */
  slots: Slot[];
}

/**
 * Step 1: read and verify the front of the bundle and check it against the
 * device (compatible, version, slots, sizes). Writes nothing.
 */
export async function preflight(
  deps: InstallDeps,
  src: ByteSource,
  what: string,
  allowDowngrade: boolean,
): Promise<Preflight> {
  const st = deps.state.current();
  if (!deps.state.can("installing")) {
    throw new UpdateError(
      "busy",
      `the update is ${st.state} (slot ${st.target}): install again once it is committed or ` +
        `rolled back`,
    );
  }
  const head = await readBundleHead(src, what);
  const keyring = await deps.keyring();
  const { manifest, keyId } = await verifyBundleHead(head, keyring);
  if (manifest.compatible !== deps.config.compatible) {
    throw new UpdateError(
      "incompatible",
      `bundle is for "${manifest.compatible}", this device is "${deps.config.compatible}"`,
    );
  }
  const booted = await deps.booted();
  const target = otherSlot(deps.config, booted.bootname);
  const current = deps.records.versionOf(booted.bootname);
  if (current && compareSemver(manifest.version, current) < 0) {
    if (!(allowDowngrade || deps.config.allowDowngrade)) {
      throw new UpdateError(
        "downgrade",
        `bundle version ${manifest.version} is older than the booted slot's ${current}; ` +
          `use --allow-downgrade to install it anyway`,
      );
    }
  }
  const slots: Slot[] = [];
  for (const img of manifest.images) {
    const slot = slotOf(deps.config, img.slotClass, target);
    if (slot.bootname !== target) {
      throw new UpdateError("no_slot", `no slot ${target} in ${img.slotClass}`);
    }
    const cap = await slotCapacity(slot);
    if (img.size > cap) {
      throw new UpdateError(
        "slot_too_small",
        `image ${img.filename} (${img.size} bytes) does not fit slot ${img.slotClass} ${target} ` +
          `(${slot.device}, ${cap} bytes)`,
      );
    }
    slots.push(slot);
  }
  const expected = bundleSize(head, manifest);
  if (src.size !== undefined && src.size < expected) {
    throw new UpdateError(
      "truncated",
      `${what} is truncated: ${src.size} of ${expected} bytes (the manifest lists ` +
        `${manifest.images.length} image(s))`,
    );
  }
  if (src.size !== undefined && src.size > expected) {
    throw new UpdateError(
      "trailing_data",
      `${what} has ${src.size - expected} bytes after the last payload`,
    );
  }
  return { head, manifest, keyId, booted, target, slots };
}

async function openSlot(slot: Slot): Promise<{ file: Deno.FsFile; regular: boolean }> {
  let regular = true;
  try {
    const st = await Deno.stat(slot.device);
    regular = !st.isBlockDevice;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new UpdateError("io", `cannot stat slot ${slot.device}: ${errorMessage(e)}`);
    }
  }
  try {
    const file = await Deno.open(slot.device, { write: true, create: regular, mode: 0o755 });
    return { file, regular };
  } catch (e) {
    throw new UpdateError("io", `cannot open slot ${slot.device} for writing: ${errorMessage(e)}`);
  }
}

async function runHook(
  hook: NonNullable<NonNullable<Manifest["hooks"]>["postInstall"]>,
  pf: Preflight,
): Promise<void> {
  const env: Record<string, string> = {
    KEEPWIRE_TARGET_SLOT: pf.target,
    KEEPWIRE_BOOTED_SLOT: pf.booted.bootname,
    KEEPWIRE_BUNDLE_VERSION: pf.manifest.version,
    KEEPWIRE_BUNDLE_COMPATIBLE: pf.manifest.compatible,
  };
  for (const s of pf.slots) {
    env[`KEEPWIRE_SLOT_DEVICE_${s.slotClass.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`] = s.device;
  }
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(hook.command[0], {
      args: hook.command.slice(1),
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    throw new UpdateError(
      "hook_failed",
      `post-install hook ${hook.command[0]}: ${errorMessage(e)}`,
    );
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, hook.timeoutMs);
  try {
    const out = await child.output();
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
      throw new UpdateError(
        "hook_failed",
        `post-install hook ${hook.command.join(" ")} exited ${out.code}${
          out.signal ? ` (${out.signal})` : ""
        }${err ? `: ${err}` : ""}`,
      );
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Install a bundle (see the module doc for the order of operations). */
export async function installBundle(
  deps: InstallDeps,
  req: InstallRequest,
): Promise<InstallResult> {
  const { config, records, state, bus, clock, boot } = deps;
  const started = clock.now();
  let progress: InstallProgress = {
    phase: "verifying",
    percent: 0,
    bytes: 0,
    total: 0,
    message: `verifying ${req.what}`,
  };
  let lastEventPct = -5;
  const report = (p: Partial<InstallProgress>) => {
    progress = { ...progress, ...p };
    req.onProgress?.(progress);
    if (progress.phase === "writing" && progress.percent >= lastEventPct + 5) {
      lastEventPct = Math.floor(progress.percent / 5) * 5;
      bus.publish({
        module: "update",
        kind: "update.install_progress",
        severity: "debug",
        payload: {
          percent: lastEventPct,
          bytes: progress.bytes,
          total: progress.total,
          target: progress.target,
        },
      });
    }
  };
  report({});

  let pf: Preflight;
  try {
    pf = await preflight(deps, req.source, req.what, !!req.allowDowngrade);
  } catch (e) {
    const err = e instanceof UpdateError ? e : new UpdateError("io", errorMessage(e), { cause: e });
    records.addHistory("install", null, null, "rejected", `${err.code}: ${err.message}`);
    bus.publish({
      module: "update",
      kind: "update.install_rejected",
      severity: "error",
      payload: { source: req.what, code: err.code, error: err.message },
    });
    report({ phase: "failed", message: err.message, error: err.message, code: err.code });
    throw err;
  }

  const { manifest, target } = pf;
  updateStep("install.verified");
  const total = manifest.images.reduce((a, i) => a + i.size, 0);
  report({
    total,
    target,
    version: manifest.version,
    message: `installing ${manifest.version} into slot ${target}`,
  });
  bus.publish({
    module: "update",
    kind: "update.install_started",
    payload: {
      source: req.what,
      version: manifest.version,
      target,
      booted: pf.booted.bootname,
      bytes: total,
      keyId: pf.keyId,
    },
  });

  const done: InstallResult["images"] = [];
  try {
    // Step 2: the target is not bootable from here until step 6.
    state.to("installing", {
      target,
      from: pf.booted.bootname,
      version: manifest.version,
      detail: `installing from ${req.what}`,
    });
    updateStep("install.state_installing");
    await bootOp(boot, `mark ${target} bad`, () => boot.markBad(target));
    updateStep("install.marked_bad");
    records.transaction(() => {
      for (const [i, img] of manifest.images.entries()) {
        records.put({
          bootname: target,
          slotClass: img.slotClass,
          device: pf.slots[i].device,
          status: "installing",
          version: manifest.version,
          compatible: manifest.compatible,
          sha256: null,
          size: img.size,
          keyId: pf.keyId,
          installedAt: null,
          goodAt: null,
          detail: `installing from ${req.what}`,
        });
      }
    });

    // Step 3: stream each payload.
    let before = 0;
    for (const [i, img] of manifest.images.entries()) {
      const slot = pf.slots[i];
      const { file, regular } = await openSlot(slot);
      let sha: string;
      try {
        sha = await hashCopy(req.source, img.size, file, {
          chunkSize: config.chunkSize,
          signal: req.signal,
          what: `${req.what}: payload ${img.filename}`,
          onProgress: (n) => {
            const bytes = before + n;
            if (bytes * 2 >= total) updateStep("install.writing");
            report({
              phase: "writing",
              bytes,
              percent: total ? Math.min(99, 1 + (bytes / total) * 98) : 99,
              message: `writing ${img.filename} to ${slot.slotClass} ${target}`,
            });
          },
        });
        if (regular) await file.truncate(img.size);
        await file.sync();
      } catch (e) {
        if (e instanceof UpdateError) throw e;
        throw new UpdateError(
          "io",
          `writing slot ${slot.slotClass} ${target} (${slot.device}): ${errorMessage(e)}`,
          { cause: e },
        );
      } finally {
        file.close();
      }
      if (sha !== img.sha256) {
        throw new UpdateError(
          "hash_mismatch",
          `payload ${img.filename} has sha256 ${sha}, the signed manifest says ${img.sha256} ` +
            `(bundle altered or corrupted)`,
        );
      }
      if (config.verifyReadBack) {
        report({ phase: "finishing", message: `reading back ${slot.device}` });
        const back = await fileSource(slot.device);
        try {
          const again = await hashCopy(back, img.size, null, {
            chunkSize: config.chunkSize,
            what: slot.device,
            signal: req.signal,
          });
          if (again !== img.sha256) {
            throw new UpdateError(
              "hash_mismatch",
              `read-back of ${slot.device} has sha256 ${again}, expected ${img.sha256}`,
            );
          }
        } finally {
          back.close();
        }
      }
      done.push({ slotClass: img.slotClass, device: slot.device, size: img.size, sha256: sha });
      before += img.size;
    }
    if (req.source.size === undefined) {
      const extra = await readFull(req.source, new Uint8Array(1));
      if (extra > 0) {
        throw new UpdateError("trailing_data", `${req.what} has bytes after the last payload`);
      }
    }

    updateStep("install.written");
    // Step 4.
    report({ phase: "finishing", percent: 99, message: "finishing" });
    if (manifest.hooks?.postInstall) await runHook(manifest.hooks.postInstall, pf);

    // Step 5.
    const now = clock.now();
    records.transaction(() => {
      for (const [i, img] of manifest.images.entries()) {
        records.put({
          bootname: target,
          slotClass: img.slotClass,
          device: pf.slots[i].device,
          status: "installed",
          version: manifest.version,
          compatible: manifest.compatible,
          sha256: img.sha256,
          size: img.size,
          keyId: pf.keyId,
          installedAt: now,
          goodAt: null,
          detail: null,
        });
      }
    });

    updateStep("install.recorded");
    // Step 6: one atomic boot env write.
    await bootOp(boot, `make ${target} primary`, () => boot.setPrimary(target));
    updateStep("install.primary_set");
  } catch (e) {
    const err = e instanceof UpdateError ? e : new UpdateError("io", errorMessage(e), { cause: e });
    try {
      records.setStatus(target, "failed", `${err.code}: ${err.message}`);
      records.addHistory(
        "install",
        target,
        manifest.version,
        "failed",
        `${err.code}: ${err.message}`,
      );
      if (state.current().state === "installing") {
        state.to("install-failed", { detail: `${err.code}: ${err.message}` });
      }
    } catch { /* the store is gone; the boot env already says bad */ }
    bus.publish({
      module: "update",
      kind: "update.install_failed",
      severity: "error",
      payload: {
        source: req.what,
        version: manifest.version,
        target,
        code: err.code,
        error: err.message,
      },
    });
    report({ phase: "failed", message: err.message, error: err.message, code: err.code });
    throw err;
  }

  records.setStatus(target, "pending", "primary; waiting for its first healthy start");
  state.to("installed", { detail: `installed from ${req.what}; primary, not yet activated` });
  updateStep("install.done");
  records.addHistory("install", target, manifest.version, "ok", `from ${req.what}`);
  const result: InstallResult = {
    target,
    booted: pf.booted.bootname,
    version: manifest.version,
    keyId: pf.keyId,
    images: done,
    bytes: total,
    durationMs: clock.now() - started,
  };
  bus.publish({ module: "update", kind: "update.installed", payload: { ...result } });
  report({
    phase: "done",
    percent: 100,
    bytes: total,
    message: `installed ${manifest.version} into slot ${target}`,
  });
  return result;
}
