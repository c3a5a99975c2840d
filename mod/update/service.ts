/**
 * The updater's operations shared by the daemon module and the offline CLI:
 * install (file, URL, stream), status per slot, mark good/bad, progress.
 * @module
 */
import type { BootScheme, BootView } from "../../hw/boot/ab.ts";
import type { BootEnv } from "../../hw/boot/types.ts";
import type { EventBus } from "../events/mod.ts";
import type {} from "./events.ts";
import type { Clock } from "../module.ts";
import type { Store } from "../store/mod.ts";
import { loadKeyring, type PublicKey } from "./bundle.ts";
import type { UpdateConfig } from "./config.ts";
import { bootOp, errorMessage, UpdateError } from "./errors.ts";
import { installBundle, type InstallProgress, type InstallResult } from "./install.ts";
import { UpdateRecords } from "./records.ts";
import { UpdateStateMachine } from "./state.ts";
import {
  allSlots,
  type Booted,
  bootnames,
  bootSchemeFor,
  detectBooted,
  type DetectInputs,
  otherSlot,
} from "./slots.ts";
import { type ByteSource, fileSource, httpSource, type HttpSourceEvents } from "./stream.ts";
import type { SlotView, UpdateStatusView } from "./status.ts";

export type { SlotView, UpdateStatusView } from "./status.ts";

/** Injectable parts of the service. */
export interface UpdateServiceOptions {
  /** Boot env (default: built from `config.bootloader`). */
  bootEnv?: BootEnv;
  /** Inputs of booted-slot detection. */
  detect?: DetectInputs;
  /** Keyring (default: read `config.keyring`). */
  keyring?: PublicKey[];
  /** Download events (tests). */
  http?: HttpSourceEvents;
}

/** Options of one install. */
export interface InstallCall {
  /** Accept an older version. */
  allowDowngrade?: boolean;
  /** Progress callback. */
  onProgress?: (p: InstallProgress) => void;
  /** Abort. */
  signal?: AbortSignal;
}

/** Install, status and marking over the store and the boot env. */
export class UpdateService {
  /** The `update` config. */
  readonly config: UpdateConfig;
  /** Store tables. */
  readonly records: UpdateRecords;
  /** The update lifecycle (persisted in the store). */
  readonly state: UpdateStateMachine;
  /** The A/B boot scheme over the boot env. */
  readonly boot: BootScheme;
  readonly #bus: EventBus;
  readonly #clock: Clock;
  readonly #opts: UpdateServiceOptions;
  #progress: InstallProgress | null = null;
  #installing = false;
  #booted: Booted | null = null;

  /** Build (runs the store migrations of the `update` tables). */
  constructor(
    config: UpdateConfig,
    store: Store,
    bus: EventBus,
    clock: Clock,
    opts: UpdateServiceOptions = {},
  ) {
    this.config = config;
    this.#bus = bus;
    this.#clock = clock;
    this.#opts = opts;
    this.records = new UpdateRecords(store, () => clock.now());
    this.state = new UpdateStateMachine(this.records.stateStore(), () => clock.now(), (t) => {
      bus.publish({
        module: "update",
        kind: "update.transition",
        severity: "info",
        payload: {
          from: t.from,
          to: t.to,
          target: t.record.target,
          version: t.record.version,
          detail: t.record.detail,
        },
      });
    });
    this.boot = bootSchemeFor(config, opts.bootEnv);
  }

  /** Install in progress (or the last one). */
  get progress(): InstallProgress | null {
    return this.#progress;
  }

  /** True while an install runs. */
  get installing(): boolean {
    return this.#installing;
  }

  /** The booted slot (detected once, then cached). */
  async booted(): Promise<Booted> {
    if (this.#booted) return this.#booted;
    const b = await detectBooted(this.config, {
      ...this.#opts.detect,
      bootEnvBooted: this.#opts.detect?.bootEnvBooted ??
        (() => this.boot.env.get("KEEPWIRE_BOOTED")),
    });
    this.#booted = b;
    return b;
  }

  async #keyring(): Promise<PublicKey[]> {
    if (this.#opts.keyring) return this.#opts.keyring;
    if (!this.config.keyring) {
      throw new UpdateError(
        "bad_key",
        "no keyring configured (update.keyring): cannot verify bundles",
      );
    }
    return await loadKeyring(this.config.keyring);
  }

  /** Install from a source (file, URL or stream). One install at a time. */
  async install(source: ByteSource, what: string, call: InstallCall = {}): Promise<InstallResult> {
    if (this.#installing) {
      source.close();
      throw new UpdateError("busy", "another install is running");
    }
    return await this.#exclusive(() => Promise.resolve(source), what, call);
  }

  async #exclusive(
    open: () => Promise<ByteSource>,
    what: string,
    call: InstallCall,
  ): Promise<InstallResult> {
    if (this.#installing) throw new UpdateError("busy", "another install is running");
    this.#installing = true;
    let source: ByteSource | undefined;
    try {
      source = await open();
      return await installBundle(
        {
          config: this.config,
          records: this.records,
          state: this.state,
          bus: this.#bus,
          clock: this.#clock,
          boot: this.boot,
          booted: () => this.booted(),
          keyring: () => this.#keyring(),
        },
        {
          source,
          what,
          allowDowngrade: call.allowDowngrade,
          signal: call.signal,
          onProgress: (p) => {
            this.#progress = p;
            call.onProgress?.(p);
          },
        },
      );
    } catch (e) {
      if (!source) {
        this.#progress = {
          phase: "failed",
          percent: 0,
          bytes: 0,
          total: 0,
          message: errorMessage(e),
          error: errorMessage(e),
          code: e instanceof UpdateError ? e.code : "io",
        };
      }
      throw e;
    } finally {
      source?.close();
      this.#installing = false;
    }
  }

  /** Open a file or an http(s) URL as a source. */
  async open(fileOrUrl: string): Promise<ByteSource> {
    if (/^https?:\/\//i.test(fileOrUrl)) {
      return await httpSource(fileOrUrl, this.config.download, this.#opts.http);
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(fileOrUrl)) {
      throw new UpdateError(
        "bad_request",
        `unsupported URL scheme in ${fileOrUrl} (http and https only)`,
      );
    }
    return await fileSource(fileOrUrl);
  }

  /** Install from a file path or an http(s) URL. */
  async installFrom(fileOrUrl: string, call: InstallCall = {}): Promise<InstallResult> {
    return await this.#exclusive(() => this.open(fileOrUrl), fileOrUrl, call);
  }

  /** Resolve `booted`, `other` or a bootname. */
  async resolveSlot(which: string): Promise<string> {
    const names = bootnames(this.config);
    if (which === "booted") return (await this.booted()).bootname;
    if (which === "other") return otherSlot(this.config, (await this.booted()).bootname);
    if (names.includes(which)) return which;
    throw new UpdateError(
      "bad_request",
      `unknown slot ${JSON.stringify(which)}: use booted, other or ${names.join(", ")}`,
    );
  }

  /** Mark a slot good (boot env and store). */
  async markGood(which = "booted"): Promise<{ slot: string }> {
    const slot = await this.resolveSlot(which);
    await bootOp(this.boot, `mark ${slot} good`, () => this.boot.markGood(slot));
    this.records.setStatus(slot, "good", null);
    this.records.addHistory("mark-good", slot, this.records.versionOf(slot), "ok", null);
    this.#bus.publish({
      module: "update",
      kind: "update.marked_good",
      payload: { slot, by: "command" },
    });
    return { slot };
  }

  /** Mark a slot bad (boot env and store). */
  async markBad(which = "other"): Promise<{ slot: string }> {
    const slot = await this.resolveSlot(which);
    await bootOp(this.boot, `mark ${slot} bad`, () => this.boot.markBad(slot));
    this.records.setStatus(slot, "bad", "marked bad by command");
    this.records.addHistory("mark-bad", slot, this.records.versionOf(slot), "ok", null);
    this.#bus.publish({
      module: "update",
      kind: "update.marked_bad",
      severity: "warning",
      payload: { slot, by: "command" },
    });
    return { slot };
  }

  /** Status of every slot. */
  async status(): Promise<UpdateStatusView> {
    let booted: Booted | null = null;
    let bootedError: string | undefined;
    try {
      booted = await this.booted();
    } catch (e) {
      bootedError = errorMessage(e);
    }
    let view: BootView | null = null;
    let bootEnvError: string | undefined;
    try {
      view = await bootOp(this.boot, "read the slots", () => this.boot.read());
    } catch (e) {
      bootEnvError = errorMessage(e);
    }
    const slots: SlotView[] = allSlots(this.config).map((s) => {
      const rec = this.records.slot(s.bootname, s.slotClass);
      const env = view?.slots.find((v) => v.name === s.bootname);
      let state: SlotView["state"] = env ? env.state : "unknown";
      if (state === "good" && rec?.status === "pending") state = "trying";
      return {
        slotClass: s.slotClass,
        bootname: s.bootname,
        device: s.device,
        state,
        status: rec?.status ?? null,
        version: rec?.version ?? null,
        sha256: rec?.sha256 ?? null,
        installedAt: rec?.installedAt ? new Date(rec.installedAt).toISOString() : null,
        booted: booted?.bootname === s.bootname,
        primary: view?.primary === s.bootname,
      };
    });
    return {
      compatible: this.config.compatible,
      booted,
      ...(bootedError ? { bootedError } : {}),
      primary: view?.primary ?? null,
      bootEnv: this.boot.describe(),
      ...(bootEnvError ? { bootEnvError } : {}),
      order: view?.order ?? [],
      mode: this.config.activation.mode,
      update: this.state.current(),
      slots,
      progress: this.#progress,
      history: this.records.history(20),
    };
  }
}
