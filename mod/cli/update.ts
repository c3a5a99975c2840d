/**
 * `keepwire update` commands: install (through the daemon, or `--offline`),
 * status, mark-good, mark-bad, activate, and launch (the restart-mode launcher).
 * @module
 */
import type { Command } from "commander";
import { join } from "node:path";
import { z } from "zod";
import { Presets, SingleBar } from "cli-progress";
import type { Config } from "../config/mod.ts";
import { EventBus } from "../events/mod.ts";
import { systemClock } from "../module.ts";
import { Store } from "../store/mod.ts";
import type { InstallProgress, InstallResult } from "../update/install.ts";
import { UpdateService, type UpdateStatusView } from "../update/service.ts";
import { cliErrorOf } from "./bundle.ts";
import { daemonRequest, daemonRunning, DaemonUnreachable } from "./client.ts";
import { CliError, commandConfig, type CommonOpts, EXIT, printJson } from "./common.ts";

/** Progress output: a bar on a TTY, else one plain line per 5 %. */
export class ProgressOutput {
  #bar: SingleBar | null = null;
  #lastStep = -1;
  #total = 0;
  readonly #tty: boolean;
  readonly #write: (line: string) => void;

  /** `tty` defaults to stdout being a terminal. */
  constructor(opts: { tty?: boolean; write?: (line: string) => void } = {}) {
    this.#tty = opts.tty ?? Deno.stdout.isTerminal();
    this.#write = opts.write ?? ((l) => console.log(l));
  }

  /** Show progress in percent with a message. */
  update(percent: number, message: string): void {
    const pct = Math.max(0, Math.min(100, percent));
    if (this.#tty) {
      if (!this.#bar) {
        this.#bar = new SingleBar({
          format: "{bar} {percentage}% | {message}",
          hideCursor: true,
          clearOnComplete: false,
        }, Presets.shades_classic);
        this.#bar.start(100, 0, { message });
      }
      this.#bar.update(Math.floor(pct), { message });
      return;
    }
    const step = Math.floor(pct / 5) * 5;
    if (step > this.#lastStep) {
      this.#lastStep = step;
      this.#write(`install: ${step}% ${message}`);
    }
  }

  /** Set the byte total for {@link bytes}. */
  set total(n: number) {
    this.#total = n;
  }

  /** Progress from bytes sent. */
  bytes(n: number, message: string): void {
    if (this.#total > 0) this.update((n / this.#total) * 100, message);
  }

  /** End the bar. */
  done(): void {
    this.#bar?.stop();
    this.#bar = null;
  }
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

function openStore(config: Config): { store: Store; bus: EventBus } {
  const store = new Store({ path: join(config.dataDir, "keepwire.db") });
  const bus = new EventBus({ journal: store });
  return { store, bus };
}

async function withOfflineService<T>(
  config: Config,
  fn: (s: UpdateService) => Promise<T>,
): Promise<T> {
  const { store } = openStore(config);
  const bus = new EventBus({ journal: store });
  try {
    const svc = new UpdateService(config.update, store, bus, systemClock);
    return await fn(svc);
  } catch (e) {
    throw cliErrorOf(e);
  } finally {
    store.close();
  }
}

function printResult(r: InstallResult): void {
  console.log(
    `installed ${r.version} into slot ${r.target} (${mib(r.bytes)} in ${
      (r.durationMs / 1000).toFixed(2)
    } s, ` +
      `signed by ${r.keyId}); slot ${r.target} is now primary — activate with "keepwire update activate"`,
  );
}

function printStatus(s: UpdateStatusView): void {
  console.log(
    `compatible ${s.compatible}; booted ${
      s.booted ? `${s.booted.bootname} (from ${s.booted.source})` : `unknown: ${s.bootedError}`
    }; ` +
      `primary ${s.primary ?? "none"}; mode ${s.mode}`,
  );
  console.log(`boot env ${s.bootEnv}${s.bootEnvError ? ` — ERROR: ${s.bootEnvError}` : ""}`);
  const u = s.update;
  console.log(
    `update ${u.state}${u.target ? ` (slot ${u.target}${u.version ? ` ${u.version}` : ""})` : ""}${
      u.detail ? `: ${u.detail}` : ""
    }`,
  );
  const rows = [[
    "CLASS",
    "SLOT",
    "DEVICE",
    "STATE",
    "VERSION",
    "SHA256",
    "INSTALLED",
    "BOOTED",
    "PRIMARY",
  ]];
  for (const x of s.slots) {
    rows.push([
      x.slotClass,
      x.bootname,
      x.device,
      x.state,
      x.version ?? "-",
      x.sha256 ? x.sha256.slice(0, 12) : "-",
      x.installedAt ?? "-",
      x.booted ? "yes" : "",
      x.primary ? "yes" : "",
    ]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd());
  if (s.progress && s.progress.phase !== "done") {
    console.log(
      `last install: ${s.progress.phase} ${s.progress.percent.toFixed(0)}% ${s.progress.message}`,
    );
  }
}

const slotArg = z.string().regex(/^[A-Za-z0-9_]+$/, "booted, other or a bootname").optional();

type InstallOpts = CommonOpts & {
  offline?: boolean;
  allowDowngrade?: boolean;
  activate?: boolean;
  json?: boolean;
};

async function installViaDaemon(
  config: Config,
  target: string,
  opts: InstallOpts,
): Promise<InstallResult> {
  const out = new ProgressOutput();
  const isUrl = /^https?:\/\//i.test(target);
  try {
    if (isUrl) {
      let finished = false;
      const poll = (async () => {
        while (!finished) {
          await new Promise((r) => setTimeout(r, 300));
          if (finished) break;
          try {
            const s = await daemonRequest<UpdateStatusView>(config.dataDir, "GET", "/api/update");
            if (s.progress && s.progress.phase !== "done" && s.progress.phase !== "failed") {
              out.update(s.progress.percent, s.progress.message);
            }
          } catch { /* keep waiting */ }
        }
      })();
      try {
        return await daemonRequest<InstallResult>(config.dataDir, "POST", "/api/update", {
          url: target,
          allowDowngrade: !!opts.allowDowngrade,
        });
      } finally {
        finished = true;
        await poll;
      }
    }
    let file: Deno.FsFile;
    try {
      file = await Deno.open(target, { read: true });
    } catch (e) {
      throw new CliError(EXIT.USAGE, `cannot open ${target}: ${(e as Error).message}`);
    }
    const size = (await file.stat()).size;
    out.total = size;
    let sent = 0;
    const body = file.readable.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctl) {
          sent += chunk.length;
          out.bytes(sent, `sending ${target} (${mib(sent)} of ${mib(size)})`);
          ctl.enqueue(chunk);
        },
      }),
    );
    try {
      return await daemonRequest<InstallResult>(
        config.dataDir,
        "POST",
        `/api/update${opts.allowDowngrade ? "?allowDowngrade=1" : ""}`,
        undefined,
        { raw: body, headers: { "content-type": "application/octet-stream" } },
      );
    } catch (e) {
      // The connection may break when the daemon rejects early; its reason is in the progress.
      if (e instanceof DaemonUnreachable) {
        const s = await daemonRequest<UpdateStatusView>(config.dataDir, "GET", "/api/update").catch(
          () => null,
        );
        if (s?.progress?.phase === "failed") {
          throw new CliError(EXIT.FAILURE, `${s.progress.error} [${s.progress.code}]`);
        }
      }
      throw e;
    }
  } finally {
    out.done();
  }
}

/** Register the update commands. */
export function registerUpdateCommands(program: Command): void {
  const u = program.command("update").description(
    "A/B updates: install bundles, slot status, mark good/bad, activate",
  );

  u.command("install")
    .description("install a bundle (file or http(s) URL) into the other slot")
    .argument("<bundle>", "bundle file or http(s):// URL")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .option("--offline", "install without a running daemon (factory / image tooling)")
    .option("--allow-downgrade", "accept a bundle older than the booted slot")
    .option("--activate", "activate right after the install (through the daemon)")
    .option("--json", "print the result as JSON")
    .action(async (target: string, opts: InstallOpts) => {
      const config = await commandConfig(opts);
      let result: InstallResult;
      if (opts.offline) {
        if (opts.activate) {
          throw new CliError(EXIT.USAGE, "--activate needs the daemon (drop --offline)");
        }
        if (await daemonRunning(config.dataDir)) {
          throw new CliError(
            EXIT.USAGE,
            `a daemon is running on ${config.dataDir}; install through it (drop --offline)`,
          );
        }
        const out = new ProgressOutput();
        try {
          result = await withOfflineService(config, (svc) =>
            svc.installFrom(target, {
              allowDowngrade: opts.allowDowngrade,
              onProgress: (p: InstallProgress) => {
                if (p.phase !== "failed") out.update(p.percent, p.message);
              },
            }));
        } finally {
          out.done();
        }
      } else {
        try {
          result = await installViaDaemon(config, target, opts);
        } catch (e) {
          if (e instanceof DaemonUnreachable) {
            throw new CliError(EXIT.NO_DAEMON, `${e.message}; or install without one: --offline`);
          }
          throw e;
        }
      }
      if (opts.json) printJson(result);
      else printResult(result);
      if (opts.activate) {
        const a = await daemonRequest<{ target: string }>(
          config.dataDir,
          "POST",
          "/api/update/activate",
        );
        console.log(`activating slot ${a.target}`);
      }
    });

  u.command("status")
    .description(
      "per slot: bootname, device, state, version, sha256, installed at, booted, primary",
    )
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .option("--json", "print JSON")
    .action(async (opts: CommonOpts & { json?: boolean }) => {
      const config = await commandConfig(opts);
      let s: UpdateStatusView;
      try {
        s = await daemonRequest<UpdateStatusView>(config.dataDir, "GET", "/api/update");
      } catch (e) {
        if (!(e instanceof DaemonUnreachable)) throw e;
        s = await withOfflineService(config, (svc) => svc.status());
      }
      if (opts.json) printJson(s);
      else printStatus(s);
    });

  for (
    const [name, dflt, what] of [["mark-good", "booted", "good"], [
      "mark-bad",
      "other",
      "bad",
    ]] as const
  ) {
    u.command(name)
      .description(`mark a slot ${what} in the boot env and the store (default: ${dflt})`)
      .argument("[slot]", "booted | other | a bootname")
      .option("-c, --config <file>", "config file")
      .option("-d, --data <dir>", "data directory")
      .option("--offline", "without a running daemon")
      .action(async (slot: string | undefined, opts: CommonOpts & { offline?: boolean }) => {
        const r = slotArg.safeParse(slot);
        if (!r.success) {
          throw new CliError(EXIT.USAGE, `${name}: slot: ${r.error.issues[0].message}`);
        }
        const config = await commandConfig(opts);
        const which = slot ?? dflt;
        let res: { slot: string };
        if (opts.offline) {
          if (await daemonRunning(config.dataDir)) {
            throw new CliError(
              EXIT.USAGE,
              `a daemon is running on ${config.dataDir}; drop --offline`,
            );
          }
          res = await withOfflineService(
            config,
            (svc) => name === "mark-good" ? svc.markGood(which) : svc.markBad(which),
          );
        } else {
          try {
            res = await daemonRequest(config.dataDir, "POST", `/api/update/${name}`, {
              slot: which,
            });
          } catch (e) {
            if (e instanceof DaemonUnreachable) {
              throw new CliError(EXIT.NO_DAEMON, `${e.message}; or without one: --offline`);
            }
            throw e;
          }
        }
        console.log(`slot ${res.slot} marked ${what}`);
      });
  }

  u.command("activate")
    .description("switch into the installed slot with every bypass segment held (needs the daemon)")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (opts: CommonOpts) => {
      const config = await commandConfig(opts);
      const a = await daemonRequest<{ target: string; version: string | null }>(
        config.dataDir,
        "POST",
        "/api/update/activate",
      );
      console.log(`activating slot ${a.target} (${a.version ?? "unknown version"})`);
    });

  u.command("launch")
    .description("restart-mode launcher: start the primary slot's entry, count tries, fall back")
    .option("-c, --config <file>", "config file")
    .action(async (opts: CommonOpts) => {
      const config = await commandConfig(opts);
      if (!Object.keys(config.update.slots).length) {
        throw new CliError(EXIT.USAGE, "no update.slots configured");
      }
      const { runLauncher } = await import("../update/launcher.ts");
      await runLauncher(config.update);
    });
}
