/** @jsxImportSource hono/jsx */
/**
 * The Subsystems page: every subsystem with its state, restarts, heartbeat age and last
 * failure, and start / stop / restart buttons for an administrator. It reads
 * GET /api/subsystems.
 * @module
 */
import type { Child } from "hono/jsx";
import type { ModulePage, PageDeps, PageViewer } from "../web/ui/contract.ts";
import { Action, Badge, fmtAge } from "../web/ui/layout.tsx";
import { missing } from "../web/ui/page_deps.tsx";
import { readApi } from "../web/ui/data.ts";
import { subsystemListSchema } from "./routes.ts";

/** Subsystems table with start/stop/restart. */
export async function subsystemsPage(d: PageDeps, who: PageViewer | null): Promise<Child> {
  const r = await readApi(d, "/api/subsystems", subsystemListSchema);
  const admin = who?.role === "admin";
  const subs = r?.subsystems ?? [];
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
                const name = s.name;
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
                      <Badge value={s.state} />
                    </td>
                    <td class="opt">{s.kind}</td>
                    <td class="opt">{s.criticality}</td>
                    <td>{String(s.restarts)}</td>
                    <td class="opt">{fmtAge(s.lastHeartbeatMs)}</td>
                    <td class="opt">{s.lastFailure || "—"}</td>
                    <td class="opt">{s.statusText ?? ""}</td>
                    <td>
                      {s.state === "stopped" || s.state === "failed" ? act("start", "Start") : (
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

/** The page as the supervisor module declares it. */
export const SUBSYSTEMS_PAGE: ModulePage = {
  path: "/subsystems",
  label: "Subsystems",
  order: 100,
  render: subsystemsPage,
};
