/** Hold reasons: free text for operators, keepwire's own reserved. */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import {
  HOLD_REASON_MAX,
  HOLD_REASONS,
  holdReasonProblem,
  isReservedHoldReason,
  operatorHoldReasonProblem,
  supervisorHoldReason,
} from "../mod/bypass/hold_reasons.ts";

Deno.test("hold reasons: an operator writes free text; control characters, blanks and overlong text are refused", () => {
  for (const ok of ["waiting for the ISP", "manual", "Wartung – Kabel", "ticket #4711", "x"]) {
    assertEquals(operatorHoldReasonProblem(ok), null, ok);
  }
  assertEquals(operatorHoldReasonProblem("a".repeat(HOLD_REASON_MAX)), null);
  assertStringIncludes(operatorHoldReasonProblem("a".repeat(HOLD_REASON_MAX + 1))!, "at most 120");
  assertStringIncludes(operatorHoldReasonProblem("")!, "empty");
  assertStringIncludes(operatorHoldReasonProblem(" padded")!, "leading or trailing");
  for (
    const bad of ["two\nlines", "tab\there", "bell\u0007", "zero\u200bwidth", "rtl\u202eoverride"]
  ) {
    assertStringIncludes(operatorHoldReasonProblem(bad)!, "printable", JSON.stringify(bad));
  }
});

Deno.test("hold reasons: keepwire's own are reserved for operators but valid to hold and release", () => {
  const own = [
    HOLD_REASONS.shutdown,
    HOLD_REASONS.update,
    HOLD_REASONS.watchdog,
    HOLD_REASONS.startup,
    supervisorHoldReason("engine"),
  ];
  for (const r of own) {
    assert(isReservedHoldReason(r), r);
    assertStringIncludes(operatorHoldReasonProblem(r)!, "reserved", r);
    assertEquals(holdReasonProblem(r), null, r);
  }
  assert(!isReservedHoldReason(HOLD_REASONS.manual), "manual is the operator's own");
  assertEquals(supervisorHoldReason("engine"), "supervisor:engine");
});
