/** @jsxImportSource hono/jsx */
/**
 * The Storage page: RAID arrays with their members and rebuild progress, and a SMART
 * summary per disk. It reads GET /api/storage.
 * @module
 */
import type { Child } from "hono/jsx";
import type { ModulePage, PageDeps } from "../web/ui/contract.ts";
import { Badge, fmtAge, Progress } from "../web/ui/layout.tsx";
import { missing } from "../web/ui/page_deps.tsx";
import { arrayState } from "../web/ui/health.ts";
import { readApi } from "../web/ui/data.ts";
import { storageViewSchema } from "./types.ts";

/** md member flags (mdstat's letters) in words. */
export const MD_FLAGS: Record<string, string> = {
  F: "faulty",
  S: "spare",
  W: "write-mostly",
  R: "replacement",
  J: "journal",
};
const MD_FLAG_CLASS: Record<string, string> = { F: "failed", S: "spare", R: "rebuilding" };

/** RAID arrays with members and rebuild progress, SMART summary per disk. */
export async function storagePage(d: PageDeps): Promise<Child> {
  const r = await readApi(d, "/api/storage", storageViewSchema);
  return (
    <>
      <h1>Storage</h1>
      {!r ? missing("Storage monitoring") : (
        <>
          <div class="grid">
            {r.arrays.map((a) => {
              const sync = a.sync;
              return (
                <div
                  class={`card state-${arrayState(a.health)}`}
                  data-array={a.name}
                >
                  <h2>
                    {a.name} <Badge value={a.health} />
                  </h2>
                  <p class="muted">
                    {a.level || "no level"} · {a.activeDisks}/{a.raidDisks} disks active
                    {a.readOnly ? " · read-only" : ""}
                  </p>
                  {sync
                    ? (
                      <div>
                        <p>
                          {sync.action} {Math.round(sync.progress * 1000) / 10}%
                          {sync.finishSeconds !== null
                            ? ` · ${fmtAge(sync.finishSeconds * 1000)} left`
                            : ""}
                          {sync.speedKiBps !== null
                            ? ` · ${Math.round(sync.speedKiBps / 1024)} MiB/s`
                            : ""}
                        </p>
                        <Progress value={sync.progress} />
                      </div>
                    )
                    : null}
                  <table>
                    <thead>
                      <tr>
                        <th>member</th>
                        <th>slot</th>
                        <th>state</th>
                      </tr>
                    </thead>
                    <tbody>
                      {a.members.map((m) => (
                        <tr>
                          <td>{m.name}</td>
                          <td>{String(m.index)}</td>
                          <td>
                            {m.flags.length
                              ? m.flags.map((f) => (
                                <span
                                  class={`badge ${MD_FLAG_CLASS[f] ?? ""}`}
                                  title={`md flag (${f})`}
                                >
                                  {MD_FLAGS[f] ?? `flag ${f}`}
                                </span>
                              ))
                              : <span class="badge ok">active</span>}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              );
            })}
          </div>
          <div class="card">
            <h2>Disks (SMART)</h2>
            <table>
              <thead>
                <tr>
                  <th>disk</th>
                  <th>health</th>
                  <th class="opt">model</th>
                  <th>temp</th>
                  <th class="opt">power-on</th>
                  <th>realloc / pending / uncorrectable</th>
                </tr>
              </thead>
              <tbody>
                {r.disks.map((dk) => (
                  <tr>
                    <td>{dk.device}</td>
                    <td>
                      <Badge value={dk.passed === false ? "failed" : dk.health} />
                    </td>
                    <td class="opt">{dk.model ?? ""}</td>
                    <td>{dk.temperatureC !== null ? `${dk.temperatureC} °C` : "—"}</td>
                    <td class="opt">
                      {dk.powerOnHours !== null ? `${dk.powerOnHours} h` : "—"}
                    </td>
                    <td>
                      {dk.reallocatedSectors ?? "—"} / {dk.pendingSectors ?? "—"} /{" "}
                      {dk.uncorrectableSectors ?? "—"}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </>
  );
}

/** The page as the storage module declares it. */
export const STORAGE_PAGE: ModulePage = {
  path: "/storage",
  label: "Storage",
  order: 300,
  render: storagePage,
};
