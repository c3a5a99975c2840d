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
import { arr, num, str } from "../web/ui/data.ts";

/** Subsystems table with start/stop/restart. */
export async function subsystemsPage(d: PageDeps, who: PageViewer | null): Promise<Child> {
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

/** The page as the supervisor module declares it. */
export const SUBSYSTEMS_PAGE: ModulePage = {
  path: "/subsystems",
  label: "Subsystems",
  order: 100,
  render: subsystemsPage,
};
