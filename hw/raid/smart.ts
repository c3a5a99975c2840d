/**
 * `smartctl --json` reader: runs smartctl through Deno.Command, validates its JSON
 * with zod and classifies the disk (`ok | warning | failing | unknown`). A device
 * without SMART (virtual disk, USB bridge, standby) is `unknown`, a normal state.
 * @module
 */
import { z } from "zod";
import type { SmartDiskHealth, SmartExitBits, SmartReader, SmartReport } from "./types.ts";

const num = z.lazy(() => z.number());
const rawAttr = z.lazy(() =>
  z.object({
    id: z.number().int(),
    name: z.string().optional(),
    value: num.optional(),
    worst: num.optional(),
    thresh: num.optional(),
    when_failed: z.string().optional(),
    raw: z.object({ value: num, string: z.string().optional() }).loose().optional(),
  }).loose()
);

/** The fields of `smartctl --json -a` output this reader uses (everything else passes through). */
export const smartctlJsonSchema = z.lazy(() =>
  z.object({
    smartctl: z.object({
      exit_status: z.number().int().min(0).max(255),
      messages: z.array(z.object({ string: z.string(), severity: z.string().optional() }).loose())
        .optional(),
    }).loose(),
    device: z.object({
      name: z.string().optional(),
      protocol: z.string().optional(),
      type: z.string().optional(),
    }).loose().optional(),
    model_name: z.string().optional(),
    /** SCSI/SAS disks name the model here instead of `model_name`. */
    scsi_model_name: z.string().optional(),
    /** SCSI/SAS: sectors remapped since manufacture (the counterpart of ATA attribute 5). */
    scsi_grown_defect_list: num.optional(),
    serial_number: z.string().optional(),
    smart_status: z.object({ passed: z.boolean().optional() }).loose().optional(),
    temperature: z.object({ current: num.optional() }).loose().optional(),
    power_on_time: z.object({ hours: num.optional() }).loose().optional(),
    ata_smart_attributes: z.object({ table: z.array(rawAttr) }).loose().optional(),
    nvme_smart_health_information_log: z.object({
      critical_warning: z.number().int().optional(),
      temperature: num.optional(),
      media_errors: num.optional(),
      percentage_used: num.optional(),
      power_on_hours: num.optional(),
      available_spare: num.optional(),
      available_spare_threshold: num.optional(),
    }).loose().optional(),
  }).loose()
);

/** Validated smartctl JSON. */
export type SmartctlJson = z.infer<typeof smartctlJsonSchema>;

/** Decode smartctl's exit status bitmask. */
export function decodeExitStatus(s: number): SmartExitBits {
  const b = (n: number) => (s & (1 << n)) !== 0;
  return {
    commandLineError: b(0),
    deviceOpenFailed: b(1),
    smartCommandFailed: b(2),
    diskFailing: b(3),
    prefailBelowThreshold: b(4),
    pastBelowThreshold: b(5),
    errorLogHasErrors: b(6),
    selfTestErrors: b(7),
  };
}

/** smartctl output that is not JSON of the expected shape. */
export class SmartctlOutputError extends Error {
  /** Build one. */
  constructor(device: string, reason: string) {
    super(`smartctl output for ${device} not understood: ${reason}`);
    this.name = "SmartctlOutputError";
  }
}

/** Options of the classification. */
export interface SmartClassifyOptions {
  /** Temperature (°C) at or above which the disk is a warning (default 60). */
  temperatureWarnC?: number;
}

const NVME_WARNINGS: [number, string][] = [
  [0x01, "available spare below threshold"],
  [0x02, "temperature outside threshold"],
  [0x04, "reliability degraded"],
  [0x08, "media read-only"],
  [0x10, "volatile memory backup failed"],
  [0x20, "persistent memory region unreliable"],
];

/** Turn smartctl JSON text (stdout) into a report; throws SmartctlOutputError when it is not smartctl JSON. */
export function parseSmartctlJson(
  device: string,
  text: string,
  opts: SmartClassifyOptions = {},
): SmartReport {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new SmartctlOutputError(device, `not JSON (${(e as Error).message})`);
  }
  const r = smartctlJsonSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new SmartctlOutputError(device, `${i.path.join(".") || "(root)"}: ${i.message}`);
  }
  return reportOf(device, r.data, opts);
}

function attrRaw(j: SmartctlJson, id: number): number | null {
  const a = j.ata_smart_attributes?.table.find((x) => x.id === id);
  return a?.raw?.value ?? null;
}

/** Build a report from validated JSON. */
export function reportOf(
  device: string,
  j: SmartctlJson,
  opts: SmartClassifyOptions = {},
): SmartReport {
  const warnC = opts.temperatureWarnC ?? 60;
  const exitStatus = j.smartctl.exit_status;
  const bits = decodeExitStatus(exitStatus);
  const nvme = j.nvme_smart_health_information_log;
  const failedAttributes = (j.ata_smart_attributes?.table ?? [])
    .filter((a) => a.when_failed !== undefined && a.when_failed !== "")
    .map((a) => `${a.id}:${a.name ?? "?"}:${a.when_failed}`);
  const report: SmartReport = {
    device,
    protocol: j.device?.protocol ?? null,
    model: j.model_name ?? j.scsi_model_name ?? null,
    serial: j.serial_number ?? null,
    passed: j.smart_status?.passed ?? null,
    temperatureC: j.temperature?.current ?? nvme?.temperature ?? null,
    powerOnHours: j.power_on_time?.hours ?? nvme?.power_on_hours ?? null,
    reallocatedSectors: attrRaw(j, 5) ?? j.scsi_grown_defect_list ?? null,
    pendingSectors: attrRaw(j, 197),
    uncorrectableSectors: attrRaw(j, 198),
    failedAttributes,
    nvmeCriticalWarning: nvme?.critical_warning ?? null,
    nvmeMediaErrors: nvme?.media_errors ?? null,
    nvmePercentageUsed: nvme?.percentage_used ?? null,
    exitStatus,
    exitBits: bits,
    messages: (j.smartctl.messages ?? []).map((m) => `${m.severity ?? "info"}: ${m.string}`),
    health: "ok",
    reasons: [],
  };
  const failing: string[] = [];
  const warning: string[] = [];
  if (report.passed === false) failing.push("SMART overall-health self-assessment failed");
  if (bits.diskFailing && report.passed !== false) {
    failing.push("smartctl: disk failing (exit bit 3)");
  }
  if (bits.prefailBelowThreshold) failing.push("prefail attribute at or below threshold now");
  for (const a of failedAttributes) {
    // when_failed is "now" (at or below threshold now) or "past" (was, in the past).
    if (/:now$/i.test(a)) failing.push(`attribute ${a}`);
    else warning.push(`attribute ${a}`);
  }
  if (report.nvmeCriticalWarning) {
    for (const [bit, text] of NVME_WARNINGS) {
      if (report.nvmeCriticalWarning & bit) failing.push(`NVMe critical warning: ${text}`);
    }
  }
  if ((report.reallocatedSectors ?? 0) > 0) {
    warning.push(`${report.reallocatedSectors} reallocated sectors`);
  }
  if ((report.pendingSectors ?? 0) > 0) warning.push(`${report.pendingSectors} pending sectors`);
  if ((report.uncorrectableSectors ?? 0) > 0) {
    warning.push(`${report.uncorrectableSectors} offline uncorrectable sectors`);
  }
  if ((report.nvmeMediaErrors ?? 0) > 0) {
    warning.push(`${report.nvmeMediaErrors} NVMe media errors`);
  }
  if (report.temperatureC !== null && report.temperatureC >= warnC) {
    warning.push(`temperature ${report.temperatureC} °C`);
  }
  if (bits.pastBelowThreshold) warning.push("an attribute was at or below threshold in the past");
  if (bits.errorLogHasErrors) warning.push("device error log has records");
  if (bits.selfTestErrors) warning.push("self-test log has errors");
  const noData = report.passed === null && report.temperatureC === null &&
    j.ata_smart_attributes === undefined && nvme === undefined;
  let health: SmartDiskHealth = "ok";
  if (failing.length) health = "failing";
  else if (noData && (bits.commandLineError || bits.deviceOpenFailed || bits.smartCommandFailed)) {
    health = "unknown";
    const msg = report.messages.find((m) => m.startsWith("error")) ?? report.messages[0];
    warning.unshift(msg ? `no SMART data (${msg})` : `no SMART data (exit status ${exitStatus})`);
  } else if (noData) {
    health = "unknown";
    warning.unshift("no SMART data");
  } else if (warning.length) health = "warning";
  report.health = health;
  report.reasons = [...failing, ...warning];
  return report;
}

/** Runs a command and returns exit code and stdout (injectable for tests). */
export type CommandRunner = (
  cmd: string,
  args: string[],
  timeoutMs: number,
) => Promise<{ code: number; stdout: string; stderr: string }>;

/** Run through Deno.Command with a kill timeout. */
export const denoCommandRunner: CommandRunner = async (
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> => {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, timeoutMs);
  try {
    const out = await child.output();
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
};

/** smartctl could not be run at all (missing, not executable, killed). */
export class SmartctlRunError extends Error {
  /** Build one. */
  constructor(message: string) {
    super(message);
    this.name = "SmartctlRunError";
  }
}

/** Options of {@link SmartctlReader}. */
export interface SmartctlReaderOptions extends SmartClassifyOptions {
  /** smartctl executable (default `smartctl`). */
  smartctl?: string;
  /** Kill after this many ms (default 30000). */
  timeoutMs?: number;
  /** Command runner (tests). */
  runner?: CommandRunner;
}

/** Reads SMART through `smartctl --json=c -a -n standby DEVICE`. */
export class SmartctlReader implements SmartReader {
  #opts: SmartctlReaderOptions;

  /** Build one. */
  constructor(opts: SmartctlReaderOptions = {}) {
    this.#opts = opts;
  }

  /** The arguments smartctl is called with for a device. */
  static args(device: string): string[] {
    // -n standby: do not spin up a sleeping disk just to poll it (exit bit 1 then).
    return ["--json=c", "-a", "-n", "standby", device];
  }

  /** Read one device. */
  async read(device: string): Promise<SmartReport> {
    const exe = this.#opts.smartctl ?? "smartctl";
    const run = this.#opts.runner ?? denoCommandRunner;
    let res;
    try {
      res = await run(exe, SmartctlReader.args(device), this.#opts.timeoutMs ?? 30_000);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new SmartctlRunError(`smartctl not found: "${exe}" (install smartmontools)`);
      }
      if (e instanceof Deno.errors.PermissionDenied) {
        throw new SmartctlRunError(`smartctl not executable: "${exe}": ${e.message}`);
      }
      throw new SmartctlRunError(`cannot run "${exe}": ${(e as Error).message}`);
    }
    if (res.stdout.trim() === "") {
      throw new SmartctlRunError(
        `"${exe}" printed nothing for ${device} (exit ${res.code})${
          res.stderr.trim() ? `: ${res.stderr.trim().split("\n")[0]}` : ""
        }`,
      );
    }
    return parseSmartctlJson(device, res.stdout, this.#opts);
  }
}
