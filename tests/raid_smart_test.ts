// smartctl --json reader: our own ATA/NVMe samples (tests/fixtures/smartctl), exit-status
// bits, bad output, running smartctl through Deno.Command (a fake smartctl script, a
// missing one, a hanging one) and the real smartctl on a device without SMART.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import {
  decodeExitStatus,
  parseSmartctlJson,
  SmartctlOutputError,
  SmartctlReader,
  SmartctlRunError,
} from "../hw/raid/smart.ts";
import type { SmartReport } from "../hw/raid/types.ts";
import { missingTools } from "./helpers/tools.ts";

const dir = new URL("./fixtures/smartctl/", import.meta.url);
const sample = (name: string): string => Deno.readTextFileSync(new URL(name, dir));
const parse = (name: string, dev = "/dev/sda"): SmartReport =>
  parseSmartctlJson(dev, sample(name), { temperatureWarnC: 60 });

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

Deno.test("smart: healthy ATA disk", () => {
  const r = parse("ata_ok.json");
  assertEquals(
    [r.protocol, r.model, r.serial, r.passed, r.temperatureC, r.powerOnHours],
    ["ATA", "EXAMPLE HDD 4TB", "EX4T000123", true, 31, 20512],
  );
  assertEquals([r.reallocatedSectors, r.pendingSectors, r.uncorrectableSectors], [0, 0, 0]);
  assertEquals([r.nvmeCriticalWarning, r.nvmeMediaErrors], [null, null]);
  assertEquals([r.exitStatus, r.health, r.reasons, r.failedAttributes], [0, "ok", [], []]);
});

Deno.test("smart: ATA with reallocated/pending/uncorrectable sectors and error log → warning", () => {
  const r = parse("ata_warning.json");
  assertEquals([r.reallocatedSectors, r.pendingSectors, r.uncorrectableSectors], [24, 3, 1]);
  assertEquals(r.exitBits.errorLogHasErrors, true);
  assertEquals(r.health, "warning");
  assertEquals(r.reasons, [
    "24 reallocated sectors",
    "3 pending sectors",
    "1 offline uncorrectable sectors",
    "device error log has records",
  ]);
});

Deno.test("smart: ATA failing (status failed, attribute failing now, exit bits 8|16|64)", () => {
  const r = parse("ata_failing.json");
  assertEquals([r.passed, r.exitStatus, r.health], [false, 88, "failing"]);
  assertEquals(r.failedAttributes, [
    "5:Reallocated_Sector_Ct:now",
    "198:Offline_Uncorrectable:past",
  ]);
  assertEquals(r.reasons.slice(0, 3), [
    "SMART overall-health self-assessment failed",
    "prefail attribute at or below threshold now",
    "attribute 5:Reallocated_Sector_Ct:now",
  ]);
  assert(r.reasons.includes("attribute 198:Offline_Uncorrectable:past"));
  assert(r.reasons.includes("3120 reallocated sectors"));
});

Deno.test("smart: NVMe healthy, hot, and with critical_warning + media errors", () => {
  const ok = parse("nvme_ok.json", "/dev/nvme0");
  assertEquals(
    [ok.protocol, ok.health, ok.nvmeCriticalWarning, ok.nvmeMediaErrors, ok.nvmePercentageUsed],
    ["NVMe", "ok", 0, 0, 3],
  );
  assertEquals([ok.reallocatedSectors, ok.powerOnHours, ok.temperatureC], [null, 9001, 41]);
  const hot = parse("nvme_hot.json", "/dev/nvme0");
  assertEquals([hot.health, hot.reasons], ["warning", ["temperature 71 °C"]]);
  const bad = parse("nvme_critical.json", "/dev/nvme0");
  assertEquals([bad.health, bad.nvmeCriticalWarning, bad.nvmeMediaErrors], ["failing", 5, 12]);
  assertEquals(bad.reasons, [
    "SMART overall-health self-assessment failed",
    "NVMe critical warning: available spare below threshold",
    "NVMe critical warning: reliability degraded",
    "12 NVMe media errors",
  ]);
});

Deno.test("smart: no SMART on the device (virtio, permission, standby) is `unknown`, not an error", () => {
  const v = parse("no_device_type.json", "/dev/vda");
  assertEquals([v.health, v.exitBits.commandLineError, v.passed], ["unknown", true, null]);
  assertEquals(v.reasons, ["no SMART data (error: /dev/vda: Unable to detect device type)"]);
  const p = parse("open_failed.json", "/dev/sdb");
  assertEquals([p.health, p.exitBits.deviceOpenFailed], ["unknown", true]);
  const s = parse("standby.json", "/dev/sdc");
  assertEquals(s.health, "unknown");
  assert(s.reasons[0].includes("STANDBY"), s.reasons[0]);
});

Deno.test("smart: exit status bits", () => {
  assertEquals(decodeExitStatus(0), {
    commandLineError: false,
    deviceOpenFailed: false,
    smartCommandFailed: false,
    diskFailing: false,
    prefailBelowThreshold: false,
    pastBelowThreshold: false,
    errorLogHasErrors: false,
    selfTestErrors: false,
  });
  const names = Object.keys(decodeExitStatus(0));
  for (let bit = 0; bit < 8; bit++) {
    const d = decodeExitStatus(1 << bit) as unknown as Record<string, boolean>;
    assertEquals(names.filter((n) => d[n]), [names[bit]], `bit ${bit}`);
  }
  assert(Object.values(decodeExitStatus(255)).every((v) => v));
  // Bit 5 only (past threshold) on an otherwise fine disk → warning.
  const j = JSON.parse(sample("ata_ok.json"));
  j.smartctl.exit_status = 32;
  const r = parseSmartctlJson("/dev/sda", JSON.stringify(j));
  assertEquals([r.health, r.reasons], ["warning", [
    "an attribute was at or below threshold in the past",
  ]]);
  // Bit 7 (self-test log errors).
  j.smartctl.exit_status = 128;
  assertEquals(parseSmartctlJson("/dev/sda", JSON.stringify(j)).reasons, [
    "self-test log has errors",
  ]);
  // Bit 3 alone, even when smart_status is missing → failing.
  delete j.smart_status;
  j.smartctl.exit_status = 8;
  assertEquals(parseSmartctlJson("/dev/sda", JSON.stringify(j)).health, "failing");
});

Deno.test("smart: output that is not smartctl JSON → SmartctlOutputError naming the problem", () => {
  let e = (() => {
    try {
      parseSmartctlJson("/dev/sda", "Smartctl: command not found");
    } catch (x) {
      return x as Error;
    }
  })();
  assert(e instanceof SmartctlOutputError);
  assert(e.message.includes("/dev/sda") && e.message.includes("not JSON"), e.message);
  e = (() => {
    try {
      parseSmartctlJson("/dev/sda", JSON.stringify({ smartctl: { exit_status: "zero" } }));
    } catch (x) {
      return x as Error;
    }
  })();
  assert(e instanceof SmartctlOutputError);
  assert(e.message.includes("smartctl.exit_status"), e.message);
});

Deno.test("smart: reader calls smartctl --json=c -a -n standby DEVICE", async () => {
  const calls: [string, string[], number][] = [];
  const reader = new SmartctlReader({
    smartctl: "/opt/bin/smartctl",
    timeoutMs: 1234,
    runner: (cmd, args, t) => {
      calls.push([cmd, args, t]);
      return Promise.resolve({ code: 0, stdout: sample("ata_ok.json"), stderr: "" });
    },
  });
  const r = await reader.read("/dev/sda");
  assertEquals(r.health, "ok");
  assertEquals(calls, [[
    "/opt/bin/smartctl",
    ["--json=c", "-a", "-n", "standby", "/dev/sda"],
    1234,
  ]]);
});

Deno.test("smart: real Deno.Command run of a fake smartctl (exit status passed through JSON)", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "kw_smart_" });
  try {
    const exe = join(tmp, "smartctl");
    const json = join(tmp, "out.json");
    await Deno.writeTextFile(json, sample("nvme_critical.json"));
    await Deno.writeTextFile(
      exe,
      `#!/bin/sh\necho "$@" > "${tmp}/args"\ncat "${json}"\nexit 8\n`,
    );
    await Deno.chmod(exe, 0o755);
    const r = await new SmartctlReader({ smartctl: exe }).read("/dev/nvme0");
    assertEquals([r.health, r.exitStatus, r.exitBits.diskFailing], ["failing", 8, true]);
    assertEquals(
      (await Deno.readTextFile(join(tmp, "args"))).trim(),
      "--json=c -a -n standby /dev/nvme0",
    );

    // A smartctl that hangs is killed after the timeout and reported.
    const hang = join(tmp, "smartctl-hang");
    await Deno.writeTextFile(hang, "#!/bin/sh\nexec sleep 60\n");
    await Deno.chmod(hang, 0o755);
    const e = await rejects(
      new SmartctlReader({ smartctl: hang, timeoutMs: 300 }).read("/dev/sda"),
    );
    assert(e instanceof SmartctlRunError, String(e));
    assert(e.message.includes("printed nothing"), e.message);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("smart: a missing smartctl is a clear error", async () => {
  const e = await rejects(
    new SmartctlReader({ smartctl: "/nonexistent/keepwire/smartctl" }).read("/dev/sda"),
  );
  assert(e instanceof SmartctlRunError, String(e));
  assert(e.message.includes("smartctl not found") && e.message.includes("smartmontools"));
});

const realSmartctl = missingTools(["smartctl"]) === undefined;

Deno.test({
  name: "smart: real smartctl on a device without SMART → unknown with smartctl's message",
  ignore: !realSmartctl,
  async fn() {
    const r = await new SmartctlReader().read("/dev/keepwire-no-such-disk");
    assertEquals(r.health, "unknown");
    assert(r.exitStatus !== 0 && (r.exitBits.commandLineError || r.exitBits.deviceOpenFailed));
    assert(r.reasons[0].startsWith("no SMART data"), r.reasons[0]);
  },
});
