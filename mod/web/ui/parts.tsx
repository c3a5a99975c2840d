/** @jsxImportSource hono/jsx */
/** Pages for the appliance's parts: subsystems, bypass, storage, update. */
import type { Child } from "hono/jsx";
import type { Principal } from "../users.ts";
import type { PageDeps } from "./page_deps.tsx";
import { Action, Badge, fmtAge, fmtTime, Progress } from "./layout.tsx";
import { arrayState, slotState } from "./health.ts";
import { arr, num, obj, str, strs, time } from "./data.ts";

function missing(what: string): Child {
  return <p class="muted">{what} is not available on this appliance.</p>;
}

/** Subsystems table with start/stop/restart. */
/** md member flags (mdstat's letters) in words. */
export const MD_FLAGS: Record<string, string> = {
  F: "faulty",
  S: "spare",
  W: "write-mostly",
  R: "replacement",
  J: "journal",
};
const MD_FLAG_CLASS: Record<string, string> = { F: "failed", S: "spare", R: "rebuilding" };

export async function subsystemsPage(d: PageDeps, who: Principal | null): Promise<Child> {
  const r = await d.internal("/api/subsystems");
  const admin = who?.role === "admin";
  const subs = arr(r?.subsystems);
  return (
    <>
      <h1>Subsystems</h1>
      <div class="card">
        {!r ? missing("Supervision") : (
          <table id="subsystems">
            <thead>
              <tr>
                <th>name</th>
                <th>state</th>
                <th class="opt">kind</th>
                <th class="opt">criticality</th>
                <th>restarts</th>
                <th class="opt">heartbeat age</th>
                <th class="opt">last failure</th>
                <th class="opt">status</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {subs.map((s) => {
                const name = str(s.name);
                const act = (a: string, label: string, cls?: string) => (
                  <Action
                    allowed={admin}
                    cls={cls}
                    api={`/api/subsystems/${name}/${a}`}
                    confirm={`${label} ${name}?`}
                    done={`${label.toLowerCase()} requested`}
                  >
                    {label}
                  </Action>
                );
                return (
                  <tr data-name={name}>
                    <td>{name}</td>
                    <td>
                      <Badge value={str(s.state)} />
                    </td>
                    <td class="opt">{str(s.kind)}</td>
                    <td class="opt">{str(s.criticality)}</td>
                    <td>{str(s.restarts)}</td>
                    <td class="opt">{fmtAge(num(s.lastHeartbeatMs))}</td>
                    <td class="opt">{str(s.lastFailure) || "—"}</td>
                    <td class="opt">{str(s.statusText) || ""}</td>
                    <td>
                      {["stopped", "failed"].includes(str(s.state)) ? act("start", "Start") : (
                        <>
                          {act("restart", "Restart")} {act("stop", "Stop", "danger")}
                        </>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </div>
    </>
  );
}

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

/** Update: upload with progress, slots, mark good/bad, history. */
export async function updatePage(d: PageDeps, who: Principal | null): Promise<Child> {
  const r = await d.internal("/api/update");
  const admin = who?.role === "admin";
  const progress = r ? obj(r.progress) : {};
  return (
    <>
      <h1>Firmware update</h1>
      {!r ? missing("The updater") : (
        <>
          {admin
            ? (
              <div class="card">
                <h2>Install a bundle</h2>
                <form
                  class="inline"
                  data-api="/api/update"
                  data-confirm="Install this bundle into the inactive slot?"
                  data-done="bundle uploaded"
                >
                  <input type="file" name="bundle" accept=".kwb" required />
                  <button type="submit" class="primary">Upload and install</button>
                </form>
                <p>
                  <span id="upload-label" class="muted">upload</span>
                </p>
                <Progress id="upload-progress" value={0} />
                <p>
                  <span id="install-label" class="muted">
                    {str(progress.phase) || "install"} {num(progress.percent) !== null
                      ? `${Math.round(num(progress.percent) ?? 0)}%`
                      : ""}
                    {progress.version ? ` — version ${str(progress.version)}` : ""}
                    {progress.error ? ` — ${str(progress.error)}` : ""}
                  </span>
                </p>
                <Progress id="install-progress" value={(num(progress.percent) ?? 0) / 100} />
                {arr(r.slots).some((sl) => !sl.booted && sl.primary && str(sl.state) !== "bad")
                  ? (
                    <p>
                      <Action
                        allowed={admin}
                        cls="primary"
                        api="/api/update/activate"
                        confirm="Activate the installed image now? Traffic is held in bypass while the appliance restarts into it."
                        done="activating"
                      >
                        Activate installed image
                      </Action>
                    </p>
                  )
                  : null}
              </div>
            )
            : null}
          <div class="card">
            <h2>Slots</h2>
            <table id="slots">
              <thead>
                <tr>
                  <th>slot</th>
                  <th>state</th>
                  <th>version</th>
                  <th class="opt">device</th>
                  <th class="opt">installed</th>
                  <th class="opt">sha256</th>
                  <th></th>
                </tr>
              </thead>
              <tbody>
                {arr(r.slots).map((s) => (
                  <tr>
                    <td>
                      {str(s.slotClass ?? s.class)} {str(s.bootname)}
                      {s.booted ? " (booted)" : ""}
                      {s.primary ? " (primary)" : ""}
                    </td>
                    <td>
                      <Badge value={slotState(s)} />
                    </td>
                    <td>{str(s.version) || "—"}</td>
                    <td class="opt">{str(s.device)}</td>
                    <td class="opt">
                      {fmtTime(num(s.installedAt) ?? (Date.parse(str(s.installedAt)) || null))}
                    </td>
                    <td class="opt">
                      <code>{str(s.sha256).slice(0, 16)}</code>
                    </td>
                    <td>
                      <Action
                        allowed={admin}
                        api="/api/update/mark-good"
                        body={{ slot: str(s.bootname) }}
                        confirm={`Mark slot ${str(s.bootname)} good?`}
                      >
                        mark good
                      </Action>{" "}
                      <Action
                        allowed={admin}
                        cls="danger"
                        api="/api/update/mark-bad"
                        body={{ slot: str(s.bootname) }}
                        confirm={`Mark slot ${str(s.bootname)} bad?`}
                      >
                        mark bad
                      </Action>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div class="card">
            <h2>History</h2>
            <table>
              <thead>
                <tr>
                  <th>time</th>
                  <th>what</th>
                  <th>version</th>
                  <th class="opt">details</th>
                </tr>
              </thead>
              <tbody>
                {arr(r.history).map((h) => (
                  <tr>
                    <td>{fmtTime(time(h.time))}</td>
                    <td>
                      {str(h.action)}{" "}
                      <Badge value={str(h.result) === "ok" ? "ok" : str(h.result)} />
                    </td>
                    <td>{str(h.version)} {str(h.bootname) ? `(${str(h.bootname)})` : ""}</td>
                    <td class="opt">
                      <code>{str(h.detail ?? "")}</code>
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
