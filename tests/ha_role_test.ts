/**
 * The HA role state machine on fake time: every transition in ROLE_TRANSITIONS
 * (the last test fails if one was never taken), reasons, timing, history, and the
 * rules keepalived cannot know (maintenance wins over reports, a dead engine is
 * never active).
 */
import {
  type HaRole,
  ROLE_TRANSITIONS,
  RoleMachine,
  ROLES,
  type RoleTransition,
} from "../mod/ha/role.ts";
import { assertEquals } from "./helpers/assert.ts";
import { fakeClock } from "./supervisor_fakes.ts";

const seen = new Set<string>();

function machine() {
  const { fc, clock } = fakeClock();
  const log: RoleTransition[] = [];
  const m = new RoleMachine(clock, (t) => {
    log.push(t);
    seen.add(`${t.from}->${t.to}`);
  });
  const path = () => log.map((t) => `${t.from}->${t.to}`);
  return { fc, m, log, path };
}

Deno.test("role: stopped -> init on start, then the engine's reports drive standby/active", () => {
  const { fc, m, log, path } = machine();
  assertEquals(m.role, "stopped");
  m.start();
  assertEquals(m.role, "init");
  assertEquals(log[0].reason.cause, "start");
  fc.tick(250);
  m.engineReport("BACKUP", 100);
  assertEquals(m.role, "standby");
  assertEquals(log[1].afterMs, 250);
  assertEquals(log[1].reason, {
    cause: "engine",
    text: "keepalived reported BACKUP (priority 100)",
  });
  fc.tick(1000);
  m.engineReport("MASTER", 100);
  assertEquals(m.role, "active");
  assertEquals(m.snapshot().lastActiveAt, fc.now);
  m.engineReport("BACKUP", 100);
  m.engineReport("FAULT", 100);
  m.engineReport("BACKUP", 100);
  assertEquals(path(), [
    "stopped->init",
    "init->standby",
    "standby->active",
    "active->standby",
    "standby->fault",
    "fault->standby",
  ]);
  assertEquals(m.snapshot().counts.standby, 3);
});

Deno.test("role: init -> active when keepalived reports MASTER first; active -> fault on FAULT and on STOP", () => {
  const { m, path } = machine();
  m.start();
  m.engineReport("MASTER", 150);
  m.engineReport("FAULT", 150);
  m.engineReport("MASTER", 150); // keepalived may leave FAULT straight to MASTER
  m.engineReport("STOP", 150);
  assertEquals(path(), [
    "stopped->init",
    "init->active",
    "active->fault",
    "fault->active",
    "active->fault",
  ]);
});

Deno.test("role: init -> fault (keepalived starts in FAULT) and a repeated report is no transition", () => {
  const { m, path } = machine();
  m.start();
  m.engineReport("FAULT", 100);
  m.engineReport("FAULT", 100);
  assertEquals(path(), ["stopped->init", "init->fault"]);
  m.enginePriority(70);
  assertEquals(m.snapshot().priority, 70);
});

Deno.test("role: keepalived down -> fault from active, standby and init; restart -> init", () => {
  for (const before of ["active", "standby", "init"] as const) {
    const { m, log, path } = machine();
    m.start();
    if (before === "active") m.engineReport("MASTER", 100);
    if (before === "standby") m.engineReport("BACKUP", 100);
    m.engineDown("keepalived killed by SIGKILL");
    assertEquals(m.role, "fault");
    assertEquals(log.at(-1)!.reason, {
      cause: "engine-down",
      text: "keepalived killed by SIGKILL",
    });
    assertEquals(m.snapshot().engine, "down");
    m.engineStarted();
    assertEquals(m.role, "init");
    assertEquals(log.at(-1)!.reason.cause, "engine-started");
    assertEquals(path().slice(-2), [`${before}->fault`, "fault->init"]);
  }
});

Deno.test("role: maintenance from every running role; reports are recorded but do not move it", () => {
  for (const before of ["init", "standby", "active", "fault"] as const) {
    const { m, path } = machine();
    m.start();
    if (before === "standby") m.engineReport("BACKUP", 100);
    if (before === "active") m.engineReport("MASTER", 100);
    if (before === "fault") m.engineReport("FAULT", 100);
    m.setMaintenance(true, "admin");
    assertEquals(m.role, "maintenance");
    assertEquals(path().at(-1), `${before}->maintenance`);
    m.engineReport("MASTER", 100); // must never make a node in maintenance active
    m.engineDown("gone");
    assertEquals(m.role, "maintenance");
    m.setMaintenance(true, "admin"); // idempotent
    assertEquals(path().at(-1), `${before}->maintenance`);
  }
});

Deno.test("role: maintenance off returns to the engine's last state (or init when none)", () => {
  const cases: [string, (m: RoleMachine) => void, HaRole][] = [
    ["no report", () => {}, "init"],
    ["BACKUP", (m) => m.engineReport("BACKUP", 100), "standby"],
    ["FAULT", (m) => m.engineReport("FAULT", 100), "fault"],
    ["MASTER", (m) => m.engineReport("MASTER", 100), "active"],
    ["down", (m) => m.engineDown("exited"), "fault"],
  ];
  for (const [name, during, expected] of cases) {
    const { m, log } = machine();
    m.start();
    m.setMaintenance(true, "admin");
    during(m);
    m.setMaintenance(false, "ops");
    assertEquals(m.role, expected, name);
    assertEquals(log.at(-1)!.reason, { cause: "maintenance", text: "maintenance off by ops" });
  }
  const { m, path } = machine();
  m.start();
  m.setMaintenance(false, "ops"); // not in maintenance: nothing
  assertEquals(path(), ["stopped->init"]);
});

Deno.test("role: every role stops; stopped ignores reports; start again resets the engine view", () => {
  const setups: Record<Exclude<HaRole, "stopped">, (m: RoleMachine) => void> = {
    init: () => {},
    standby: (m) => m.engineReport("BACKUP", 100),
    active: (m) => m.engineReport("MASTER", 100),
    fault: (m) => m.engineReport("FAULT", 100),
    maintenance: (m) => m.setMaintenance(true, "admin"),
  };
  for (const [role, setup] of Object.entries(setups)) {
    const { m, path, log } = machine();
    m.start();
    setup(m);
    m.stop("keepwire stopping");
    assertEquals(path().at(-1), `${role}->stopped`);
    assertEquals(log.at(-1)!.reason.cause, "stop");
    m.engineReport("MASTER", 100);
    m.engineDown("x");
    m.setMaintenance(true, "x");
    m.stop();
    assertEquals(m.role, "stopped");
    m.start();
    assertEquals(m.snapshot().engine, null);
    assertEquals(m.role, "init");
  }
});

Deno.test("role: the history keeps the last 32 transitions with their times", () => {
  const { fc, m } = machine();
  m.start();
  for (let i = 0; i < 40; i++) {
    fc.tick(10);
    m.engineReport(i % 2 ? "MASTER" : "BACKUP", 100);
  }
  const h = m.snapshot().history;
  assertEquals(h.length, 32);
  assertEquals(h.at(-1)!.time, fc.now);
  assertEquals(h.at(-1)!.afterMs, 10);
  assertEquals(m.snapshot().counts.active, 20);
});

Deno.test("role (witness): quorum lost makes an active node fault at once, before keepalived reports", () => {
  const { fc, m, log, path } = machine();
  m.start();
  m.setQuorum(true, "quorate (members 1,2)");
  m.engineReport("MASTER", 150);
  fc.tick(5000);
  m.setQuorum(false, "quorum_lost: not quorate (members 1)");
  assertEquals(m.role, "fault");
  assertEquals(log.at(-1)!.reason, {
    cause: "quorum",
    text: "quorum lost: quorum_lost: not quorate (members 1)",
  });
  assertEquals(log.at(-1)!.afterMs, 5000);
  assertEquals(m.snapshot().quorate, false);
  // keepalived still says MASTER (it has not read the track file yet): still fault
  m.engineReport("MASTER", 150);
  assertEquals(m.role, "fault");
  assertEquals(m.snapshot().reason.cause, "quorum");
  // it complies
  m.engineReport("FAULT", 150);
  assertEquals(m.role, "fault");
  // quorum back: no role change by itself; keepalived's next report decides
  m.setQuorum(true, "quorate (members 1)");
  assertEquals(m.role, "fault");
  m.engineReport("BACKUP", 150);
  assertEquals(m.role, "standby");
  assertEquals(path(), ["stopped->init", "init->active", "active->fault", "fault->standby"]);
});

Deno.test("role (witness): a MASTER report while not quorate is fault, from init and from standby", () => {
  for (const setup of [() => {}, (m: RoleMachine) => m.engineReport("BACKUP", 100)]) {
    const { m, log } = machine();
    m.start();
    setup(m);
    const from = m.role;
    m.setQuorum(false, "witness_down: corosync is starting");
    assertEquals(m.role, from, "losing quorum changes nothing but an active role");
    m.engineReport("MASTER", 100);
    assertEquals(m.role, "fault");
    assertEquals(log.at(-1)!.from, from);
    assertEquals(
      log.at(-1)!.reason.text,
      "keepalived reported MASTER while not quorate (witness_down: corosync is starting)",
    );
    assertEquals(m.snapshot().lastActiveAt, null, "never active");
  }
});

Deno.test("role (witness): maintenance off while not quorate and keepalived MASTER is fault", () => {
  const { m, path } = machine();
  m.start();
  m.engineReport("MASTER", 100);
  m.setMaintenance(true, "admin");
  m.setQuorum(false, "quorum_lost: not quorate (members 1)");
  assertEquals(m.role, "maintenance");
  m.engineReport("MASTER", 100);
  m.setMaintenance(false, "admin");
  assertEquals(m.role, "fault");
  assertEquals(path().at(-1), "maintenance->fault");
  // stopped ignores quorum
  m.stop();
  m.setQuorum(false, "x");
  assertEquals(m.role, "stopped");
});

Deno.test("role: every transition of ROLE_TRANSITIONS was taken by the tests above", () => {
  const table = ROLES.flatMap((from) => ROLE_TRANSITIONS[from].map((to) => `${from}->${to}`));
  const missing = table.filter((t) => !seen.has(t));
  assertEquals(missing, [], `transitions never taken: ${missing.join(", ")}`);
});
