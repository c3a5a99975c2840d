/** @jsxImportSource hono/jsx */
/**
 * The bypass page: segments, their holds, hold and release. It reads GET /api/bypass
 * as the typed {@link SegmentStatus} this module's API answers with (no guessing at
 * field names).
 * @module
 */
import type { Child } from "hono/jsx";
import type { ModulePage, PageDeps, PageViewer } from "../web/ui/contract.ts";
import { Action, Badge, fmtTime } from "../web/ui/layout.tsx";
import type { SegmentStatus } from "./types.ts";
import { RESERVED_HOLD_REASONS, supervisorHoldReason } from "./hold_reasons.ts";

/** Bypass segments with holds, hold/release. */
export async function bypassPage(d: PageDeps, who: PageViewer | null): Promise<Child> {
  const r = await d.internal<{ segments: SegmentStatus[] }>("/api/bypass");
  const admin = who?.role === "admin";
  return (
    <>
      <h1>Bypass</h1>
      <p class="muted">
        A segment is in bypass (its two ports shorted into a wire) while any hold is active. Each
        hold has a reason: yours is free text (say why, e.g. "cabling work in rack 3"); keepwire's
        own are {RESERVED_HOLD_REASONS.join(", ")} and {supervisorHoldReason("NAME")}{" "}
        (a subsystem that escalated). Releasing the last hold returns the segment to inline.
      </p>
      {!r ? <p class="muted">Bypass is not available on this appliance.</p> : (
        <div class="grid">
          {r.segments.map((s) => {
            const name = s.name;
            const holds = s.holds;
            const wd = s.watchdog;
            return (
              <div class="card segment" data-segment={name}>
                <h2>
                  {name} <Badge value={s.mode} />
                </h2>
                <p class="muted">
                  ports {s.ports.join(" ↔ ")} · driver {s.driver}
                  {wd.supported ? ` · card watchdog ${wd.armed ? "armed" : "off"}` : ""}
                </p>
                <table>
                  <thead>
                    <tr>
                      <th>hold</th>
                      <th>count</th>
                      <th>since</th>
                      <th></th>
                    </tr>
                  </thead>
                  <tbody>
                    {holds.length === 0
                      ? (
                        <tr>
                          <td colspan={4} class="muted">no holds</td>
                        </tr>
                      )
                      : null}
                    {holds.map((h) => {
                      const reason = h.reason;
                      return (
                        <tr>
                          <td>{reason}</td>
                          <td>{String(h.count)}</td>
                          <td>{fmtTime(Date.parse(h.since))}</td>
                          <td>
                            <Action
                              allowed={admin}
                              api={`/api/bypass/${name}/release`}
                              body={{ reason }}
                              confirm={`Release the "${reason}" hold on ${name}?`}
                              done="released"
                            >
                              release
                            </Action>
                          </td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
                {admin
                  ? (
                    <form
                      class="inline"
                      data-api={`/api/bypass/${name}/hold`}
                      data-confirm={`Put ${name} into bypass? Traffic will go around the appliance.`}
                      data-done="hold added"
                    >
                      <input
                        name="reason"
                        placeholder="reason, e.g. cabling work in rack 3"
                        aria-label="reason for the hold"
                        maxlength={120}
                        required
                      />
                      <button type="submit" class="primary">Hold in bypass</button>
                    </form>
                  )
                  : null}
              </div>
            );
          })}
        </div>
      )}
    </>
  );
}

/** The page as the bypass module declares it. */
export const BYPASS_PAGE: ModulePage = {
  path: "/bypass",
  label: "Bypass",
  order: 200,
  render: bypassPage,
};
