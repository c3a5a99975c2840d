/**
 * THE words table: event kind → which "thing" it is about (alert flap suppression counts per
 * thing), one sentence saying what happened with its key fields, what to do next, and
 * whether it raises an alert by default. Alerts (mod/alert/render.ts) and the web UI's
 * event lists both read events through {@link describe}; kinds without a row get a
 * generic sentence made from their scalar fields.
 *
 * Kinds are matched by string.
 * @module
 */
import type { EventKind, EventMap, KwEvent, Payload } from "./mod.ts";
import type {} from "../ha/events.ts";
import type {} from "../storage/events.ts";
import type {} from "../supervisor/events.ts";
import type {} from "../update/events.ts";
import type {} from "../governor/events.ts";
import type {} from "../watchdog/events.ts";
import type {} from "../web/events.ts";
import type {} from "../alert/events.ts";
import type {} from "../bypass/events.ts";
import type {} from "../runtime_events.ts";
import type {} from "../sdk/events.ts";
import type {} from "../repl/events.ts";

/** How one kind reads. */
interface Row<P> {
  /** Does this event raise an alert under the default rules? (default: yes) */
  alert?: (p: P) => boolean;
  /** Words only: never an alert by default (not in {@link DEFAULT_ALERT_KINDS}). */
  quiet?: true;
  /** The thing it is about (flap key), e.g. `md0`, `segment lan0`. */
  thing: (p: P) => string;
  /** What happened, one sentence. */
  what: (p: P) => string;
  /** What to do next, one or two sentences. */
  advice: (p: P) => string;
}

const TABLE = new Map<string, Row<Payload>>();

/** Add a row for a declared kind (its payload typed). */
function row<K extends EventKind>(kind: K, r: Row<EventMap[K]>): void {
  TABLE.set(kind, r as unknown as Row<Payload>);
}

row("ha.role_changed", {
  alert: (p) => p.to === "active" || p.to === "fault" || p.from === "active",
  thing: (p) => `HA role of ${p.node}`,
  what: (p) =>
    p.to === "active"
      ? `This node (${p.node}) took over and is now ACTIVE (was ${p.from}): ${p.reason}.`
      : `This node (${p.node}) went from ${p.from} to ${p.to.toUpperCase()}: ${p.reason}.`,
  advice: (p) =>
    p.to === "active"
      ? "Traffic now runs through this node. Check why the other node gave up the active role (its alerts, its status page) and bring it back as standby."
      : p.to === "fault"
      ? "This node cannot carry traffic. Check the failed parts on its status page (subsystems, links, storage); the peer should be active."
      : "Check that the peer took over (it sends its own alert) and that traffic flows.",
});
row("ha.failover_pending", {
  thing: (p) => `HA role of ${p.node}`,
  what: (p) =>
    `The active node ${p.peer} is gone or failed and failover is manual: this node (${p.node}) is ready to take over and WAITS for an operator (${p.reason}).`,
  advice: () =>
    "Check the active node. To move traffic here, run `keepwire ha failover` on this node (or use its HA page); until then this node does not take over by itself.",
});
row("ha.failback_waiting", {
  quiet: true,
  thing: (p) => `failback of set ${p.set} to ${p.node}`,
  what: (p) =>
    `Node ${p.node} owns client set ${p.set} and is back, but does not take it back yet: ${p.reason}.`,
  advice: () =>
    "Nothing to do: it takes the set back by a graceful handover once its replication caught up with the holder (ha status shows what it waits for).",
});
row("ha.catching_up", {
  quiet: true,
  thing: (p) => `HA role of ${p.node}`,
  what: (p) =>
    `Node ${p.node} is back while ${p.peer} is active, and its replicated copy is behind: it is held as a standby (keepalived in FAULT) and does not become active until it caught up (${p.reason}).`,
  advice: () =>
    "Nothing to do: it lets go once its replication caught up with the peer (ha status shows what it waits for). If it does not, check replication on both nodes.",
});
row("ha.caught_up", {
  quiet: true,
  thing: (p) => `HA role of ${p.node}`,
  what: (p) =>
    `Node ${p.node} is no longer held out of active (${p.how}, after ${
      Math.round(Number(p.heldMs) / 1000)
    } s): ${p.reason}.`,
  advice: () => "Nothing to do.",
});
row("ha.failback_requested", {
  quiet: true,
  thing: (p) => `failback of set ${p.set} to ${p.node}`,
  what: (p) =>
    `Node ${p.node} asked the holder of client set ${p.set} to hand it back (${p.reason}); the holder drains replication first.`,
  advice: () => "Nothing to do.",
});
row("ha.failback_refused", {
  quiet: true,
  thing: (p) => `failback of set ${p.set} to ${p.node}`,
  what: (p) =>
    `The holder of client set ${p.set} refused to hand it back to ${p.node}: ${p.reason}. It asks again later.`,
  advice: () =>
    "If this repeats, check replication on both nodes (ha status: the channel's link, lag and epoch).",
});
row("ha.peer_lost", {
  thing: (p) => `peer ${p.peer}`,
  what: (p) => `The HA peer ${p.peer} stopped answering node ${p.node}: ${p.reason}.`,
  advice: () =>
    "Check the peer's power and the HA link between the nodes. Until it is back there is no standby.",
});
row("ha.paired", {
  quiet: true,
  thing: (p) => `pair ${p.pairId}`,
  what: (p) => `Node ${p.node} is paired with ${p.peer} (pair ${p.pairId}).`,
  advice: () => "Nothing to do.",
});
row("ha.unpaired", {
  thing: (p) => `pair ${p.pairId}`,
  what: (p) =>
    `Node ${p.node} left the HA pair ${p.pairId} with ${p.peer} (by ${p.by}): its pair credentials are removed and nothing is replicated${
      p.forced && p.lost ? `; forced although ${p.lost}` : ""
    }.`,
  advice: () =>
    "Run keepwire ha unpair on the other node too; to make a pair again run keepwire ha pair --code on one node and --peer HOST --code CODE on the other.",
});
row("ha.peer_unpaired", {
  thing: (p) => `pair ${p.pairId}`,
  what: (p) =>
    `The peer ${p.peer} left the HA pair ${p.pairId} at ${p.unpairedAt}; node ${p.node} still holds the pair's credentials but nothing is replicated.`,
  advice: () =>
    "If that was intended, run keepwire ha unpair here (it says what would be lost), then pair again; otherwise find out who unpaired the peer.",
});
row("ha.cert_rotated", {
  quiet: true,
  thing: (p) => `peer link certificate of ${p.node}`,
  what: (p) =>
    `Node ${p.node} replaced its peer link certificate (by ${p.by}): now ${
      p.fingerprint.slice(0, 16)
    }…, valid until ${p.notAfter ?? "?"}; the peer ${p.peer} accepted it.`,
  advice: () => "Nothing to do.",
});
row("ha.peer_cert_rotated", {
  quiet: true,
  thing: (p) => `peer link certificate of ${p.peer}`,
  what: (p) =>
    `The peer ${p.peer} replaced its peer link certificate; node ${p.node} now pins ${
      p.fingerprint.slice(0, 16)
    }….`,
  advice: () => "Nothing to do.",
});
row("ha.cert_expiring", {
  thing: (p) => `peer link certificate of ${p.holder}`,
  what: (p) =>
    `The peer link certificate of ${
      p.whose === "peer" ? `the peer ${p.holder}` : `this node ${p.holder}`
    } expires on ${p.notAfter} (in ${p.daysLeft} day(s)); once it has expired the nodes no longer accept each other.`,
  advice: (p) => `Run keepwire ha rotate-cert on ${p.holder} while the peer link is up.`,
});
row("ha.peer_degraded", {
  thing: (p) => `peer ${p.peer}`,
  what: (p) => `The HA peer ${p.peer} reports unhealthy parts: ${p.parts.join(", ")}.`,
  advice: () => "Repair the peer before a failover needs it; it may not be able to take over.",
});
row("ha.dual_active", {
  thing: (p) => `HA pair ${p.node}/${p.peer}`,
  what: (p) =>
    `Both nodes (${p.node} and ${p.peer}) were ACTIVE at the same time (a split brain); resolved by ${p.resolvedBy}.${
      p.seen ? ` Seen: ${p.seen}.` : ""
    }`,
  advice: () =>
    "Check the HA link between the nodes (cables, switch, VLAN): they could not hear each other. Look for duplicate-address problems on the network during that time.",
});
row("ha.hook_failed", {
  thing: (p) => `HA hook of ${p.node}`,
  what: (p) =>
    `The HA notify hook of ${p.node} failed for the change to ${p.role.toUpperCase()} (from ${p.from}): ${p.error}.`,
  advice: () =>
    "The service may not have moved (a route, a DNS record): check the hook's output in the event and run it by hand with the same KW_HA_* variables.",
});
row("ha.upgrade_stopped", {
  thing: (p) => `rolling upgrade of ${p.node}`,
  what: (p) =>
    `The rolling upgrade of the HA pair${
      p.target ? ` to ${p.target}` : ""
    } STOPPED at step ${p.step}: ${p.reason}.`,
  advice: () =>
    "Both nodes still serve. Fix the cause (`keepwire ha status` shows the step and reason), then run `keepwire ha upgrade BUNDLE` again.",
});
row("ha.upgrade_done", {
  quiet: true,
  thing: (p) => `rolling upgrade of ${p.node}`,
  what: (p) =>
    `The rolling upgrade of the HA pair to ${p.target} is done (${Math.round(p.ms / 1000)} s).`,
  advice: () => "Nothing to do.",
});
row("ha.quorum_lost", {
  thing: (p) => `quorum of ${p.node}`,
  what: (p) => `Node ${p.node} lost quorum: ${p.reason}.`,
  advice: () =>
    "Check the witness and the network to it; without quorum a failover may not happen.",
});
row("ha.quorum_regained", {
  quiet: true,
  thing: (p) => `quorum of ${p.node}`,
  what: (p) =>
    `Node ${p.node} is quorate again (members ${p.members.join(", ") || "none listed"}).`,
  advice: () => "Nothing to do: failover is possible again.",
});
row("ha.witness_failed", {
  thing: (p) => `witness engine of ${p.node}`,
  what: (p) =>
    `corosync or its quorum device on ${p.node} stopped: ${p.reason}. This node cannot be active until it runs again${
      p.restartInMs !== null && p.restartInMs !== undefined
        ? ` (restart in ${Math.round(p.restartInMs / 1000)} s)`
        : ""
    }.`,
  advice: () =>
    "Check the HA part on the status page and the corosync configuration; `keepwire ha status` shows the witness state. The peer should carry traffic meanwhile.",
});
row("ha.witness_started", {
  quiet: true,
  thing: (p) => `witness engine of ${p.node}`,
  what: (p) => `corosync and its quorum device started on ${p.node} (pids ${p.pids.join(", ")}).`,
  advice: () => "Nothing to do.",
});
row("ha.self_fence", {
  thing: (p) => `HA role of ${p.node}`,
  what: (p) =>
    `Node ${p.node} lost quorum and could not give up the active role in time: it stopped petting the hardware watchdog and will be RESET (${p.reason}).`,
  advice: () =>
    "The board resets by itself; the peer takes over. After the reset, look at why this node's event loop or keepalived did not react (its journal before the reset).",
});
row("repl.standby_lost", {
  thing: (p) => `replication of pair ${p.pairId}`,
  what: (p) =>
    `Replication to the standby stopped: ${p.reason} (${p.pending} change(s) not yet on the standby).`,
  advice: () =>
    "Until the standby is back there is no up-to-date copy: a failover now would lose the changes since. Check the standby and the peer link; it resyncs by itself when it answers again.",
});
row("repl.standby_back", {
  quiet: true,
  thing: (p) => `replication of pair ${p.pairId}`,
  what: (p) => `The standby answers again after ${Math.round(p.downMs / 1000)} s.`,
  advice: () => "Nothing to do: it catches up by itself.",
});
row("repl.tail_saved", {
  thing: (p) => `replication of pair ${p.pairId}`,
  what: (p) =>
    `This node was active before and had ${p.frames} change(s) the new active never received (seq ${p.fromSeq}–${p.toSeq}); they were set aside in ${p.file}, not merged.`,
  advice: () =>
    "Look at the file to decide whether anything in it must be entered again on the active node; nothing was applied from it.",
});
row("repl.refused", {
  quiet: true,
  thing: (p) => `replication of pair ${p.pairId}`,
  what: (p) =>
    `A replication frame (epoch ${p.epoch}, seq ${p.seq}) was refused: ${p.message}${
      p.resync ? "; a full resync follows" : ""
    }.`,
  advice: () => "Nothing was applied from it. If this repeats, check both nodes' versions.",
});
row("repl.resync_finished", {
  quiet: true,
  thing: (p) => `replication of pair ${p.pairId}`,
  what: (p) =>
    `The standby installed a full copy (${(p.bytes / 1e6).toFixed(1)} MB, ${p.tables} tables) in ${
      (p.ms / 1000).toFixed(1)
    } s.`,
  advice: () => "Nothing to do.",
});
row("storage.array_degraded", {
  thing: (p) => `array ${p.array}`,
  what: (p) => `RAID array ${p.array} is DEGRADED: ${p.degradedDisks} disk(s) missing.`,
  advice: () =>
    "Replace the failed disk soon: one more failure loses data. The array rebuilds onto the new disk by itself.",
});
row("storage.member_failed", {
  thing: (p) => `array ${p.array}`,
  what: (p) => `Disk ${p.device} failed in RAID array ${p.array} (now ${p.health}).`,
  advice: () => "Replace the disk; keep the array's remaining disks untouched until it rebuilds.",
});
row("storage.array_health_changed", {
  alert: (p) => p.to === "failed",
  thing: (p) => `array ${p.array}`,
  what: (p) => `RAID array ${p.array} went from ${p.from ?? "unknown"} to ${p.to.toUpperCase()}.`,
  advice: (p) =>
    p.to === "failed"
      ? "The array has lost too many disks to run. Do not write to it; restore from backup or call support."
      : "Check the array's status page.",
});
row("storage.rebuild_finished", {
  thing: (p) => `array ${p.array}`,
  what: (p) =>
    p.completed
      ? `RAID array ${p.array} finished its ${p.action}: it is ${p.health} again.`
      : `RAID array ${p.array} stopped its ${p.action} before the end (now ${p.health}).`,
  advice: (p) =>
    p.completed
      ? "Nothing to do; the redundancy is back."
      : "Check the disks of the array: the rebuild was aborted or another disk failed.",
});
row("storage.disk_health_changed", {
  alert: (p) => p.to === "failing",
  thing: (p) => `disk ${p.disk}`,
  what: (p) =>
    `Disk ${p.disk} reports SMART ${p.to.toUpperCase()} (was ${p.from ?? "unknown"})${
      p.reasons.length ? `: ${p.reasons.join("; ")}` : ""
    }.`,
  advice: () => "Plan to replace this disk now; it is predicted to fail.",
});
row("supervisor.transition", {
  alert: (p) => p.to === "failed",
  thing: (p) => `subsystem ${p.subsystem}`,
  what: (p) =>
    p.to === "failed"
      ? `Subsystem ${p.subsystem} (${p.criticality}) FAILED after ${p.restarts} restart(s): ${p.reason}.`
      : `Subsystem ${p.subsystem} (${p.criticality}) went from ${p.from} to ${p.to}${
        p.reason ? `: ${p.reason}` : ""
      }${p.restarts ? ` (${p.restarts} restart(s) so far)` : ""}.`,
  advice: (p) =>
    p.to === "failed"
      ? "Look at the subsystem's recent output on its page (or `keepwire sub status`); fix the cause, then restart it."
      : p.to === "restarting"
      ? "keepwire restarts it by itself. If it keeps restarting, look at its recent output on its page."
      : "Nothing to do.",
});
row("supervisor.escalation", {
  thing: (p) => `subsystem ${p.subsystem}`,
  what: (p) =>
    `Subsystem ${p.subsystem} gave up and was escalated: ${p.action}${
      p.segments ? ` (bypass ${p.segments === "all" ? "all segments" : p.segments.join(", ")})` : ""
    }. ${p.reason}.`,
  advice: (p) =>
    p.action === "bypass-hold"
      ? "Traffic bypasses the appliance until the subsystem is ready again. Fix the subsystem; the hold is released by itself."
      : p.action === "reboot"
      ? "The appliance reboots to recover. If this repeats, check the subsystem's output after the reboot."
      : "Check the subsystem's page for its last errors.",
});
row("alert.bypass_held", {
  thing: (p) => `bypass ${p.segment}`,
  what: (p) =>
    `Bypass segment ${p.segment} has been held for ${Math.round(p.heldMs / 60_000)} minutes (${
      p.holds.join(", ")
    }): traffic is not inspected.`,
  advice: () =>
    "Release the hold when the work is done (`keepwire bypass release`), or find which part keeps it held on the Bypass page.",
});
row("update.rolled_back", {
  thing: () => "update",
  what: (p) =>
    `The update to ${
      p.version ?? "a new version"
    } was ROLLED BACK: slot ${p.failed} failed (${p.reason}); slot ${p.running} runs again.`,
  advice: () =>
    "The appliance runs the previous version. Check the update's notes and the journal before trying it again.",
});
row("update.committed", {
  thing: () => "update",
  what: (p) => `The update to ${p.version ?? "a new version"} is committed (slot ${p.slot}).`,
  advice: () => "Nothing to do.",
});
row("governor.level_changed", {
  alert: (p) => p.to === "severe",
  thing: () => "load",
  what: (p) => `The load governor went from ${p.from} to ${p.to.toUpperCase()}: ${p.reason}.`,
  advice: () =>
    "The appliance sheds work to stay up (bulk subsystems suspended, API requests refused). Find the source of the load on the Governor page.",
});
row("watchdog.last_reset_by_watchdog", {
  thing: () => "watchdog",
  what: (p) =>
    `The last restart of the appliance was a hardware watchdog reset${
      p.device ? ` (${p.device})` : ""
    }: it hung or crashed before.`,
  advice: () =>
    "Look at the journal just before the reset for what stopped responding; report it if it repeats.",
});
row("auth.locked", {
  thing: (p) => `account ${p.user}`,
  what: (p) =>
    `Account ${p.user} is LOCKED OUT for ${
      Math.round(p.forMs / 60_000)
    } minutes after repeated wrong passwords.`,
  advice: () =>
    "If this was not you, someone is guessing passwords: check the failed logins in the journal and the addresses they came from.",
});

QUIET_ROWS();

/** Kinds raising an alert by default (the table's rows that are not quiet). */
export const DEFAULT_ALERT_KINDS: readonly string[] = [...TABLE.entries()]
  .filter(([, r]) => !r.quiet).map(([k]) => k);

/** Rows that give words to common events that raise no alert. */
function QUIET_ROWS(): void {
  const q = true as const;
  row("bypass.mode_changed", {
    quiet: q,
    thing: (p) => `segment ${p.segment}`,
    what: (p) =>
      `Segment ${p.segment} switched from ${p.from} to ${p.to}${
        p.holds.length ? ` (held by ${p.holds.join(", ")})` : ""
      } in ${p.ms} ms.`,
    advice: () => "",
  });
  row("bypass.hold_added", {
    quiet: q,
    thing: (p) => `segment ${p.segment}`,
    what: (p) =>
      `${p.by} put a hold "${p.reason}" on segment ${p.segment}; it is now ${p.mode} (${p.count} hold${
        p.count === 1 ? "" : "s"
      }).`,
    advice: () => "",
  });
  row("bypass.hold_released", {
    quiet: q,
    thing: (p) => `segment ${p.segment}`,
    what: (p) =>
      `${p.by} released the hold "${p.reason}" on segment ${p.segment}${
        p.forced ? " (forced)" : ""
      }; ${p.remaining} hold${p.remaining === 1 ? "" : "s"} left.`,
    advice: () => "",
  });
  row("bypass.segment_found", {
    quiet: q,
    thing: (p) => `segment ${p.segment}`,
    what: (p) => `Found bypass segment ${p.segment} (${p.driver} driver), currently ${p.mode}.`,
    advice: () => "",
  });
  row("storage.rebuild_started", {
    quiet: q,
    thing: (p) => p.array,
    what: (p) => `${p.array} started a ${p.action} (${Math.round(p.progress * 100)}% done).`,
    advice: () => "",
  });
  row("storage.rebuild_progress", {
    quiet: q,
    thing: (p) => p.array,
    what: (p) => `${p.array} ${p.action} at ${p.step}%.`,
    advice: () => "",
  });
  row("update.install_progress", {
    quiet: q,
    thing: () => "update",
    what: (p) => {
      const v = p as unknown as Record<string, unknown>;
      const frac = typeof v.progress === "number" ? ` ${Math.round(v.progress * 100)}%` : "";
      return `Installing an update: ${String(v.phase ?? "writing")}${frac}.`;
    },
    advice: () => "",
  });
  row("sdk.handoff_changed", {
    quiet: q,
    thing: (p) => `subsystem ${p.subsystem}`,
    what: (p) =>
      p.target === "peer"
        ? `New work of ${p.subsystem} goes to the peer node: queue ${p.depth} reached ${p.onAt}.`
        : `New work of ${p.subsystem} stays on this node again (queue ${p.depth}).`,
    advice: () => "",
  });
  row("sdk.tables_refused", {
    quiet: q,
    thing: (p) => `subsystem ${p.subsystem}`,
    what: (p) => `${p.subsystem}'s tables (group ${p.group}) were refused: ${p.message}`,
    advice: () => "Fix the subsystem's table declaration or migrations (docs/ha.md, SDK tables).",
  });
  row("auth.user_created", {
    quiet: q,
    thing: (p) => `account ${p.user}`,
    what: (p) => `Account ${p.user} (${p.role}) was created by ${p.by}.`,
    advice: () => "",
  });
  row("runtime.started", {
    quiet: q,
    thing: () => "keepwire",
    what: (p) => `keepwire ${p.version} started (pid ${p.pid}) in ${p.startMs} ms.`,
    advice: () => "",
  });
  row("supervisor.essentials_ready", {
    quiet: q,
    thing: () => "subsystems",
    what: (p) =>
      p.ready ? "Every essential subsystem is ready." : "An essential subsystem is not ready.",
    advice: () => "",
  });
}

/** Does the event raise an alert under the default rules? */
export function defaultRuleMatches(e: KwEvent): boolean {
  const row = TABLE.get(e.kind);
  if (!row || row.quiet) return false;
  try {
    return row.alert ? row.alert(e.payload) : true;
  } catch {
    return false;
  }
}

/** What happened, what to do, for any event (unknown kinds get a generic sentence). */
export function describe(e: KwEvent): { thing: string; what: string; advice: string } {
  const row = TABLE.get(e.kind);
  if (row) {
    try {
      return {
        thing: row.thing(e.payload),
        what: row.what(e.payload),
        advice: row.advice(e.payload),
      };
    } catch { /* a payload of another shape: the generic words below */ }
  }
  const detail = Object.entries(e.payload).filter(([, v]) => typeof v !== "object")
    .map(([k, v]) => `${k} ${v}`).join(", ");
  return {
    thing: `${e.kind}`,
    what: `${e.module}: ${e.kind.replace(/^[^.]*\./, "").replaceAll("_", " ")}${
      detail ? ` (${detail})` : ""
    }.`,
    advice: "Check the event journal on the appliance for details.",
  };
}
