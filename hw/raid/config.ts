/** Config schema of RAID and disk health (`hardware.raid`). */
import { z } from "zod";

/** Scripted scenarios of the mock driver. */
export const RAID_MOCK_SCENARIOS = ["clean", "fail-rebuild", "array-failure"] as const;

/** The `hardware.raid` section. */
export const raidConfigSchema = z.strictObject({
  driver: z.enum(["mock", "md"]).default("mock").describe(
    "mock (scripted scenario), or md (/proc/mdstat + /sys/block/mdX/md)",
  ),
  pollMs: z.number().int().min(100).default(5000).describe("md poll interval"),
  mdstat: z.string().min(1).default("/proc/mdstat").describe("md driver: path of mdstat"),
  sysfsRoot: z.string().min(1).default("/sys/block").describe(
    "md driver: directory holding mdX/md/ (sysfs wins over mdstat where they differ)",
  ),
  useSysfs: z.boolean().default(true).describe("md driver: read sysfs in addition to mdstat"),
  smartctl: z.string().min(1).default("smartctl").describe("smartctl executable (name or path)"),
  disks: z.array(z.string().regex(/^\/dev\/\S+$/, 'a device path like "/dev/sda"')).default([])
    .describe("disks whose SMART health is watched (mock: empty = the scenario's disks)"),
  smartPollMs: z.number().int().min(1000).default(300_000).describe("SMART poll interval"),
  smartTimeoutMs: z.number().int().min(100).default(30_000).describe(
    "smartctl is killed after this long",
  ),
  temperatureWarnC: z.number().min(0).max(150).default(60).describe(
    "disk temperature at or above this is a warning",
  ),
  expectSpares: z.record(z.string().regex(/^[A-Za-z0-9_]+$/), z.number().int().min(0))
    .default({})
    .describe('spares expected per array (storage.spares_missing when fewer), e.g. {"md0": 1}'),
  rebuildIncrement: z.number().int().min(1).max(50).default(20).describe(
    "a storage.rebuild_progress event every this many percent (mdadm --increment)",
  ),
  essential: z.boolean().default(false).describe(
    "a failed array makes /api/health fail (503)",
  ),
  scenario: z.enum(RAID_MOCK_SCENARIOS).default("clean").describe(
    "mock driver: clean | fail-rebuild | array-failure",
  ),
});

/** The validated `hardware.raid` section. */
export type RaidConfig = z.infer<typeof raidConfigSchema>;
