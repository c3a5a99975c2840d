// smartctl --json reader over REAL captures from physical drives (third-party data in
// ../shared/fixtures/smartctl, read in place, never copied here; see its SOURCES.md). The
// expectations come from the captures themselves and from SOURCES.md, not from our parser:
// smart_status.passed, temperature.current, smartctl.exit_status, the model and serial
// fields, the ATA attribute table, the NVMe health log.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseSmartctlJson, SmartctlReader } from "../hw/raid/smart.ts";
import { diskStatusOf } from "../mod/storage/health.ts";
import { ignored } from "./helpers/tools.ts";

const SHARED = new URL("../../shared/fixtures/smartctl/", import.meta.url);

function sharedPresent(): boolean {
  try {
    return Deno.statSync(new URL("SOURCES.md", SHARED)).isFile;
  } catch {
    return false;
  }
}
const present = sharedPresent();
if (!present) {
  ignored(
    `${SHARED.pathname} is absent (real smartctl captures live in ../shared and are never ` +
      "copied into the repo; CI always has them)",
  );
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === "object" ? v as Json : {});

interface Capture {
  name: string;
  text: string;
  json: Json;
}

function captures(): Capture[] {
  return [...Deno.readDirSync(SHARED)]
    .filter((e) => e.isFile && e.name.endsWith(".json"))
    .map((e) => {
      const text = Deno.readTextFileSync(new URL(e.name, SHARED));
      return { name: e.name, text, json: JSON.parse(text) as Json };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The raw value of ATA attribute `id` in the capture's own table, or null. */
function ataRaw(j: Json, id: number): number | null {
  const table = obj(j.ata_smart_attributes).table;
  if (!Array.isArray(table)) return null;
  const a = table.find((x) => obj(x).id === id);
  const v = a === undefined ? undefined : obj(obj(a).raw).value;
  return typeof v === "number" ? v : null;
}

/** SOURCES.md's table: file → [passed, °C, exit status], as its authors wrote it. */
function sourcesTable(): Map<string, [boolean, number, number]> {
  const out = new Map<string, [boolean, number, number]>();
  const md = Deno.readTextFileSync(new URL("SOURCES.md", SHARED));
  for (const line of md.split("\n")) {
    const m =
      /^\| (\S+\.json) \| [^|]+ \| SMART (passed|FAILED), (\d+) °C, smartctl exit status (\d+) \|/
        .exec(line);
    if (m) out.set(m[1], [m[2] === "passed", Number(m[3]), Number(m[4])]);
  }
  return out;
}

Deno.test({
  name: "smart (real captures): every field we report is the capture's own value",
  ignore: !present,
  fn() {
    const all = captures();
    assertEquals(all.length, 7, "7 captures expected in ../shared/fixtures/smartctl");
    for (const c of all) {
      const j = c.json;
      const r = parseSmartctlJson("/dev/x", c.text, { temperatureWarnC: 60 });
      const nvme = obj(j.nvme_smart_health_information_log);
      const want = {
        protocol: obj(j.device).protocol ?? null,
        model: j.model_name ?? j.scsi_model_name ?? null,
        serial: j.serial_number ?? null,
        passed: obj(j.smart_status).passed ?? null,
        temperatureC: obj(j.temperature).current ?? null,
        powerOnHours: obj(j.power_on_time).hours ?? null,
        reallocatedSectors: ataRaw(j, 5) ?? j.scsi_grown_defect_list ?? null,
        pendingSectors: ataRaw(j, 197),
        uncorrectableSectors: ataRaw(j, 198),
        nvmeCriticalWarning: nvme.critical_warning ?? null,
        nvmeMediaErrors: nvme.media_errors ?? null,
        exitStatus: obj(j.smartctl).exit_status,
      };
      const got = Object.fromEntries(
        Object.keys(want).map((k) => [k, r[k as keyof typeof r]]),
      );
      assertEquals(got, want, c.name);
      assert(want.model !== null && want.protocol !== null, `${c.name}: model and protocol read`);
    }
  },
});

Deno.test({
  name: "smart (real captures): SOURCES.md's passed / temperature / exit status agree",
  ignore: !present,
  fn() {
    const table = sourcesTable();
    const all = captures();
    assertEquals(
      [...table.keys()].sort(),
      all.map((c) => c.name).sort(),
      "SOURCES.md lists every file",
    );
    for (const c of all) {
      const r = parseSmartctlJson("/dev/x", c.text);
      assertEquals([r.passed, r.temperatureC, r.exitStatus], table.get(c.name), c.name);
    }
  },
});

Deno.test({
  name:
    "smart (real captures): health — the failed NVMe is failing with its own reason, grown defects warn, the rest ok",
  ignore: !present,
  fn() {
    const health = Object.fromEntries(
      captures().map((c) => {
        const r = parseSmartctlJson("/dev/x", c.text, { temperatureWarnC: 60 });
        return [c.name, [r.health, r.reasons]];
      }),
    );
    // smart_status.passed false, exit status 8 (bit 3: disk failing), and the capture's
    // smart_status.nvme.volatile_memory_backup_failed (critical_warning 16 = bit 4).
    const failed = captures().find((c) => obj(c.json.smart_status).passed === false)!;
    assertEquals(failed.name, "nvme-null-SAMSUNG_MZWLL3T2HAJQ-00005-nvme0.json");
    assertEquals(obj(obj(failed.json.smart_status).nvme).volatile_memory_backup_failed, true);
    assertEquals(health[failed.name], [
      "failing",
      [
        "SMART overall-health self-assessment failed",
        "NVMe critical warning: volatile memory backup failed",
      ],
    ]);
    // The SAS disk passed its self-assessment but has remapped 260 sectors since manufacture.
    const sas = captures().find((c) => c.name === "SEAGATE_ST373453LC_26.json")!;
    assertEquals(sas.json.scsi_grown_defect_list, 260);
    assertEquals(health[sas.name], ["warning", ["260 reallocated sectors"]]);
    for (const [name, h] of Object.entries(health)) {
      if (name === failed.name || name === sas.name) continue;
      assertEquals(h, ["ok", []], name);
    }
  },
});

Deno.test({
  name:
    "smart (real captures): through the reader (smartctl's exit code and stdout) into a disk status",
  ignore: !present,
  async fn() {
    for (const c of captures()) {
      const code = obj(c.json.smartctl).exit_status as number;
      const reader = new SmartctlReader({
        runner: (cmd, args) => {
          assertEquals([cmd, args], ["smartctl", SmartctlReader.args("/dev/sdq")]);
          return Promise.resolve({ code, stdout: c.text, stderr: "" });
        },
      });
      const r = await reader.read("/dev/sdq");
      const d = diskStatusOf(r, 1000);
      assertEquals([d.device, d.health, d.model], ["/dev/sdq", r.health, r.model], c.name);
      assertEquals(d.temperatureC, obj(c.json.temperature).current, c.name);
    }
  },
});
