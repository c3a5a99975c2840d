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
import { arr, num, obj, str, strs } from "../web/ui/data.ts";

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
  const r = await d.internal("/api/storage");
  return (
    <>
      <h1>Storage</h1>
      {!r ? missing("Storage monitoring") : (
        <>
          <div class="grid">
            {arr(r.arrays).map((a) => {
              const sync = a.sync ? obj(a.sync) : null;
              return (
                <div
                  class={`card state-${arrayState(str(a.health))}`}
                  data-array={str(a.name)}
                >
                  <h2>
                    {str(a.name)} <Badge value={str(a.health)} />
                  </h2>
                  <p class="muted">
                    {str(a.level) || "no level"} · {str(a.activeDisks)}/{str(a.raidDisks)}{" "}
                    disks active
                    {a.readOnly ? " · read-only" : ""}
                  </p>
                  {sync
                    ? (
                      <div>
                        <p>
                          {str(sync.action)} {Math.round((num(sync.progress) ?? 0) * 1000) / 10}%
                          {num(sync.finishSeconds) !== null
                            ? ` · ${fmtAge((num(sync.finishSeconds) ?? 0) * 1000)} left`
                            : ""}
                          {num(sync.speedKiBps) !== null
                            ? ` · ${Math.round((num(sync.speedKiBps) ?? 0) / 1024)} MiB/s`
                            : ""}
                        </p>
                        <Progress value={num(sync.progress)} />
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
                      {arr(a.members).map((m) => (
                        <tr>
                          <td>{str(m.name)}</td>
                          <td>{str(m.index)}</td>
                          <td>
                            {strs(m.flags).length
                              ? strs(m.flags).map((f) => (
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
                {arr(r.disks).map((dk) => (
                  <tr>
                    <td>{str(dk.device ?? dk.name)}</td>
                    <td>
                      <Badge
                        value={dk.passed === false || dk.healthy === false
                          ? "failed"
                          : str(dk.health) || "ok"}
                      />
                    </td>
                    <td class="opt">{str(dk.model)}</td>
                    <td>
                      {num(dk.temperatureC ?? dk.temperature) !== null
                        ? `${dk.temperatureC ?? dk.temperature} °C`
                        : "—"}
                    </td>
                    <td class="opt">
                      {num(dk.powerOnHours) !== null ? `${dk.powerOnHours} h` : "—"}
                    </td>
                    <td>
                      {str(dk.reallocatedSectors ?? "—")} / {str(dk.pendingSectors ?? "—")} /{" "}
                      {str(dk.uncorrectableSectors ?? dk.offlineUncorrectable ?? "—")}
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
