/** @jsxImportSource hono/jsx */
/**
 * The Update page: upload a bundle with progress, the slots with mark good / bad, and
 * the update history. It reads GET /api/update.
 * @module
 */
import type { Child } from "hono/jsx";
import type { ModulePage, PageDeps, PageViewer } from "../web/ui/contract.ts";
import { Action, Badge, fmtTime, Progress } from "../web/ui/layout.tsx";
import { missing } from "../web/ui/page_deps.tsx";
import { slotState } from "../web/ui/health.ts";
import { readApi } from "../web/ui/data.ts";
import { updateFullStatusSchema } from "./status.ts";

/** Update: upload with progress, slots, mark good/bad, history. */
export async function updatePage(d: PageDeps, who: PageViewer | null): Promise<Child> {
  const r = await readApi(d, "/api/update", updateFullStatusSchema);
  const admin = who?.role === "admin";
  const progress = r?.progress ?? null;
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
                    {progress?.phase ?? "install"}{" "}
                    {progress ? `${Math.round(progress.percent)}%` : ""}
                    {progress?.version ? ` — version ${progress.version}` : ""}
                    {progress?.error ? ` — ${progress.error}` : ""}
                  </span>
                </p>
                <Progress id="install-progress" value={(progress?.percent ?? 0) / 100} />
                {r.slots.some((sl) => !sl.booted && sl.primary && sl.state !== "bad")
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
                {r.slots.map((s) => (
                  <tr>
                    <td>
                      {s.slotClass} {s.bootname}
                      {s.booted ? " (booted)" : ""}
                      {s.primary ? " (primary)" : ""}
                    </td>
                    <td>
                      <Badge value={slotState(s)} />
                    </td>
                    <td>{s.version || "—"}</td>
                    <td class="opt">{s.device}</td>
                    <td class="opt">
                      {fmtTime(s.installedAt === null ? null : Date.parse(s.installedAt) || null)}
                    </td>
                    <td class="opt">
                      <code>{(s.sha256 ?? "").slice(0, 16)}</code>
                    </td>
                    <td>
                      <Action
                        allowed={admin}
                        api="/api/update/mark-good"
                        body={{ slot: s.bootname }}
                        confirm={`Mark slot ${s.bootname} good?`}
                      >
                        mark good
                      </Action>{" "}
                      <Action
                        allowed={admin}
                        cls="danger"
                        api="/api/update/mark-bad"
                        body={{ slot: s.bootname }}
                        confirm={`Mark slot ${s.bootname} bad?`}
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
                {r.history.map((h) => (
                  <tr>
                    <td>{fmtTime(h.time)}</td>
                    <td>
                      {h.action} <Badge value={h.result} />
                    </td>
                    <td>{h.version ?? ""} {h.bootname ? `(${h.bootname})` : ""}</td>
                    <td class="opt">
                      <code>{h.detail ?? ""}</code>
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

/** The page as the update module declares it. */
export const UPDATE_PAGE: ModulePage = {
  path: "/update",
  label: "Update",
  title: "Update",
  order: 600,
  render: updatePage,
};
