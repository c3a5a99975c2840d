/**
 * `keepwire raid status [--mdstat FILE] [--sysfs DIR] [--json]`: RAID arrays with
 * health, from a file, from the running daemon, or (no daemon) straight from the
 * configured driver.
 * @module
 */
import type { Command } from "commander";
import { z } from "zod";
import { CliError, commandConfig, type CommonOpts, EXIT, printJson } from "./common.ts";
import { daemonRequest, DaemonUnreachable } from "./client.ts";
import { InputTooLargeError, READ_LIMITS, readTextFileBounded } from "../fs.ts";
import { createRaidDriver, RaidDriverError } from "../../hw/raid/mod.ts";
import { describeUnknown, MdstatParseError, parseMdstat } from "../../hw/raid/mdstat.ts";
import { mergeSysfs, readMdSysfs } from "../../hw/raid/md_sysfs.ts";
import type { MdArray, Mdstat } from "../../hw/raid/types.ts";
import { arrayStatus, formatArrayLine, type RaidArrayStatus } from "../storage/health.ts";
import { storageViewSchema } from "../storage/types.ts";

/** Options of `raid status`. */
const statusOptsSchema = z.object({
  mdstat: z.string().min(1, "--mdstat needs a file").optional(),
  sysfs: z.string().min(1, "--sysfs needs a directory").optional(),
  json: z.boolean().optional(),
  config: z.string().optional(),
  data: z.string().optional(),
});

/** Loose shape check of the daemon's GET /api/storage answer. */

/** Register the raid commands. */
export function registerRaidCommands(program: Command): void {
  const raid = program.command("raid").description("RAID arrays (Linux md) and their health");
  raid.command("status")
    .description(
      "show md arrays with health (ok|degraded|rebuilding|failed|inactive); " +
        "exit 2 on a malformed mdstat (the message names the line)",
    )
    .option("--mdstat <file>", "parse this mdstat file instead of asking the daemon / driver")
    .option("--sysfs <dir>", "with --mdstat: also read DIR/mdX/md/ (a /sys/block tree)")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (raw: unknown) => {
      const r = statusOptsSchema.safeParse(raw);
      if (!r.success) throw new CliError(EXIT.USAGE, r.error.issues[0].message);
      await raidStatus(r.data);
    });
}

async function raidStatus(opts: z.infer<typeof statusOptsSchema>): Promise<void> {
  if (opts.sysfs && !opts.mdstat) throw new CliError(EXIT.USAGE, "--sysfs needs --mdstat");
  let arrays: RaidArrayStatus[];
  let parsed: MdArray[] | null = null;
  if (opts.mdstat) {
    const md = await fromFile(opts.mdstat, opts.sysfs);
    parsed = md.arrays;
    arrays = md.arrays.map(arrayStatus);
  } else {
    const cfg = await commandConfig(opts as CommonOpts);
    const fromDaemon = await daemonArrays(cfg.dataDir);
    if (fromDaemon) arrays = fromDaemon;
    else {
      const driver = createRaidDriver(cfg.hardware.raid);
      let md: Mdstat;
      try {
        md = (await driver.md.read()).mdstat;
      } catch (e) {
        if (e instanceof MdstatParseError) throw new CliError(EXIT.USAGE, e.message);
        if (e instanceof RaidDriverError) throw new CliError(EXIT.FAILURE, e.message);
        throw e;
      }
      warnUnknown(md);
      parsed = md.arrays;
      arrays = md.arrays.map(arrayStatus);
    }
  }
  if (opts.json) return printJson({ arrays });
  if (!arrays.length) {
    console.log("no md arrays");
    return;
  }
  for (let i = 0; i < arrays.length; i++) console.log(formatArrayLine(arrays[i], parsed?.[i]));
}

async function fromFile(file: string, sysfs: string | undefined): Promise<Mdstat> {
  let text: string;
  try {
    text = await readTextFileBounded(file, READ_LIMITS.mdstat, "mdstat");
  } catch (e) {
    if (e instanceof InputTooLargeError) throw new CliError(EXIT.USAGE, e.message);
    throw new CliError(EXIT.USAGE, `cannot read --mdstat ${file}: ${(e as Error).message}`);
  }
  let md: Mdstat;
  try {
    md = parseMdstat(text, { source: file });
  } catch (e) {
    if (e instanceof MdstatParseError) throw new CliError(EXIT.USAGE, e.message);
    throw e;
  }
  warnUnknown(md);
  if (sysfs) {
    try {
      if (!(await Deno.stat(sysfs)).isDirectory) throw new Error("not a directory");
    } catch (e) {
      throw new CliError(EXIT.USAGE, `--sysfs ${sysfs}: ${(e as Error).message}`);
    }
    for (const a of md.arrays) {
      const s = await readMdSysfs(a.name, sysfs);
      if (s) mergeSysfs(a, s);
    }
  }
  return md;
}

function warnUnknown(md: Mdstat): void {
  for (const line of describeUnknown(md.unknown)) {
    console.error(`keepwire: warning: mdstat ${line}`);
  }
}

/** Arrays from a running daemon, or null when none runs. */
async function daemonArrays(dataDir: string): Promise<RaidArrayStatus[] | null> {
  let body: unknown;
  try {
    body = await daemonRequest(dataDir, "GET", "/api/storage");
  } catch (e) {
    if (e instanceof DaemonUnreachable) return null;
    throw e;
  }
  // the route's own answer schema: a daemon of another version that answers differently is
  // named, not half-read
  const r = storageViewSchema.safeParse(body);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new CliError(
      EXIT.FAILURE,
      `the daemon's /api/storage answer is not understood (${
        first.path.join(".") || "answer"
      }: ${first.message})`,
    );
  }
  return r.data.arrays;
}
