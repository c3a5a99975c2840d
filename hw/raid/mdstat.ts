/**
 * Parser of /proc/mdstat (the kernel's md_seq_show / status_resync output).
 *
 * Lines are classified by their tokens, never by indentation (captures in the wild
 * use 0, 2, 6, 7 or 8 spaces and tabs). Lines it does not know are kept in
 * `unknown` and never fatal; a line of a known kind whose fixed part is broken
 * throws {@link MdstatParseError} with the 1-based line number.
 * @module
 */
import type {
  MdArray,
  MdBitmap,
  MdGeometry,
  MdMember,
  Mdstat,
  MdSync,
  MdSyncAction,
  MdSyncStatus,
  MdUnknownLine,
} from "./types.ts";

/** Malformed mdstat input: names the line (1-based) and what is wrong. */
export class MdstatParseError extends Error {
  /** 1-based line number. */
  readonly line: number;
  /** The offending line. */
  readonly text: string;
  /** Where the text came from (file name), if given. */
  readonly source: string;

  /** Build one. */
  constructor(source: string, line: number, text: string, reason: string) {
    super(`${source}:${line}: ${reason}: ${JSON.stringify(text.trim())}`);
    this.name = "MdstatParseError";
    this.line = line;
    this.text = text;
    this.source = source;
  }
}

/** Options of {@link parseMdstat}. */
export interface ParseMdstatOptions {
  /** Name of the input for error messages (default `mdstat`). */
  source?: string;
}

const HEADER = /^(\S+)\s+:\s+(\S+)(?:\s+(.*))?$/;
const MEMBER = /^([^\s[\]()]+)\[(\d+)\]((?:\([A-Za-z]\))*)$/;
const FLAG = /\(([A-Za-z])\)/g;
const STATUS = /^(\d+)\s+blocks(?=\s|$)(.*)$/;
const BAR = /^\[[=>.]*\]/;
const PROGRESS =
  /^\[[=>.]*\]\s*([a-z]+)\s*=\s*(\d+(?:\.\d+)?)%\s*\((\d+)\/(\d+)\)(?:\s+finish=(\d+(?:\.\d+)?)min)?(?:\s+speed=(\d+)K\/sec)?$/;
const QUEUED = /^([a-z]+)=([A-Z]+)$/;
const BITMAP =
  /^bitmap:\s*(\d+)\/(\d+)\s+pages\s+\[(\d+)KB\],\s*(\d+)(B|KB|MB|GB)?\s+chunk(?:,\s*file:\s*(.+))?$/;

const ACTIONS: Record<string, MdSyncAction> = {
  resync: "resync",
  recovery: "recovery",
  recover: "recovery",
  check: "check",
  repair: "repair",
  reshape: "reshape",
};
const QUEUED_STATUS: Record<string, MdSyncStatus> = {
  DELAYED: "delayed",
  PENDING: "pending",
  REMOTE: "remote",
};
const UNIT_BYTES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

function emptyGeometry(): MdGeometry {
  return {
    levelNum: null,
    chunkKiB: null,
    algorithm: null,
    roundingKiB: null,
    nearCopies: null,
    farCopies: null,
    offsetCopies: null,
    devicesPerSet: null,
  };
}

/** Parse the text of /proc/mdstat. Throws {@link MdstatParseError} on malformed input. */
export function parseMdstat(text: string, opts: ParseMdstatOptions = {}): Mdstat {
  const source = opts.source ?? "mdstat";
  const lines = text.split("\n");
  const out: Mdstat = {
    personalities: [],
    arrays: [],
    unusedDevices: [],
    complete: false,
    unknown: [],
  };
  const seen = new Map<string, number>();
  let sawPersonalities = false;
  let current: MdArray | null = null;
  let skipping = false; // inside the block of an unknown header: lines are kept as unknown
  const fail = (i: number, reason: string): never => {
    throw new MdstatParseError(source, i + 1, lines[i], reason);
  };
  const keep = (i: number): void => {
    out.unknown.push({
      line: i + 1,
      text: lines[i].replace(/\r$/, ""),
      array: current?.name ?? null,
    });
  };

  for (let i = 0; i < lines.length; i++) {
    const t = lines[i].trim();
    if (t === "") {
      current = null;
      skipping = false;
      continue;
    }
    if (!sawPersonalities) {
      if (!t.startsWith("Personalities")) {
        fail(i, 'expected the "Personalities :" line first');
      }
      const colon = t.indexOf(":");
      if (colon < 0 || t.slice("Personalities".length, colon).trim() !== "") {
        fail(i, 'expected "Personalities : [pers] ..."');
      }
      for (const tok of t.slice(colon + 1).split(/\s+/)) {
        if (tok === "") continue;
        const m = /^\[([^\]\s]+)\]$/.exec(tok);
        if (!m) fail(i, `bad personality "${tok}": expected [name]`);
        out.personalities.push(m![1]);
      }
      sawPersonalities = true;
      continue;
    }
    if (t.startsWith("unused devices:")) {
      const rest = t.slice("unused devices:".length).trim();
      out.unusedDevices = rest === "<none>" || rest === "" ? [] : rest.split(/\s+/);
      out.complete = true;
      current = null;
      skipping = false;
      continue;
    }
    const h = HEADER.exec(t);
    if (h && (h[2] === "active" || h[2] === "inactive")) {
      const first = seen.get(h[1]);
      if (first !== undefined) fail(i, `array ${h[1]} listed twice (first at line ${first})`);
      seen.set(h[1], i + 1);
      current = parseHeader(h[1], h[2] === "active", h[3] ?? "", i, fail);
      out.arrays.push(current);
      skipping = false;
      continue;
    }
    if (h && h[1] !== "bitmap:") {
      // "NAME : WORD ..." with a state we do not know: keep the whole block as unknown.
      current = null;
      skipping = true;
      keep(i);
      continue;
    }
    if (skipping) {
      keep(i);
      continue;
    }
    const kind = bodyKind(t);
    if (current === null) {
      if (kind !== null) {
        fail(i, `${kind} line outside an array (no "mdX : active|inactive" before it)`);
      }
      keep(i);
      continue;
    }
    if (kind === "status") parseStatus(current, t, i, fail);
    else if (kind === "progress") {
      const m = PROGRESS.exec(t);
      if (!m) {
        fail(
          i,
          'bad progress line: expected "[==>...]  ACTION = P% (DONE/TOTAL) finish=Mmin speed=SK/sec"',
        );
      }
      const action = ACTIONS[m![1]];
      if (!action) keep(i);
      else current.sync = progressSync(action, m!);
    } else if (kind === "queued") {
      const m = QUEUED.exec(t)!;
      const action = ACTIONS[m[1]];
      const status = QUEUED_STATUS[m[2]];
      if (!action || !status) keep(i);
      else current.sync = queuedSync(action, status);
    } else if (kind === "bitmap") {
      const m = BITMAP.exec(t);
      if (!m) {
        fail(i, 'bad bitmap line: expected "bitmap: U/T pages [NKB], C(KB|B) chunk[, file: F]"');
      }
      current.bitmap = bitmapOf(m!);
    } else keep(i);
  }
  if (!sawPersonalities) {
    throw new MdstatParseError(source, 1, lines[0] ?? "", 'empty input: no "Personalities :" line');
  }
  return out;
}

function bodyKind(t: string): "status" | "progress" | "queued" | "bitmap" | null {
  const c = t.charCodeAt(0);
  if (c >= 48 && c <= 57 && STATUS.test(t)) return "status";
  if (c === 91 /* [ */ && BAR.test(t)) return "progress";
  if (t.startsWith("bitmap:") && /^bitmap:\s*\d+\//.test(t)) return "bitmap";
  if (QUEUED.test(t)) return "queued";
  return null;
}

function parseHeader(
  name: string,
  active: boolean,
  rest: string,
  i: number,
  fail: (i: number, reason: string) => never,
): MdArray {
  const a: MdArray = {
    name,
    active,
    readOnly: null,
    level: null,
    members: [],
    blocks: null,
    metadata: null,
    external: null,
    container: null,
    subarray: null,
    geometry: emptyGeometry(),
    raidDisks: null,
    workingDisks: null,
    pattern: null,
    sync: null,
    bitmap: null,
    extraStatus: [],
    line: i + 1,
    sysfs: null,
  };
  for (const tok of rest.split(/\s+/)) {
    if (tok === "") continue;
    if (tok === "(read-only)" || tok === "(auto-read-only)") {
      if (a.level !== null || a.members.length) fail(i, `${tok} after the level or members`);
      a.readOnly = tok === "(read-only)" ? "read-only" : "auto-read-only";
      continue;
    }
    if (tok.includes("[") || tok.includes("(")) {
      const m = MEMBER.exec(tok);
      if (!m) {
        fail(i, `bad member "${tok}": expected NAME[NUMBER] with optional (F)(S)(W)(R)(J) flags`);
      }
      const member: MdMember = {
        name: m![1],
        descNr: Number(m![2]),
        flags: [],
        slot: null,
        sysfsState: null,
      };
      if (m![3]) { for (const f of m![3].matchAll(FLAG)) member.flags.push(f[1]); }
      a.members.push(member);
      continue;
    }
    if (a.level === null && a.members.length === 0) {
      a.level = tok;
      continue;
    }
    fail(i, `unexpected "${tok}" among the members (a member is NAME[NUMBER])`);
  }
  return a;
}

function parseStatus(
  a: MdArray,
  t: string,
  i: number,
  fail: (i: number, reason: string) => never,
): void {
  const m = STATUS.exec(t)!;
  a.blocks = Number(m[1]);
  const tok = m[2].trim().split(/\s+/);
  const g = a.geometry;
  for (let k = 0; k < tok.length; k++) {
    const w = tok[k];
    if (w === "") continue;
    const next = tok[k + 1];
    if (w.charCodeAt(0) === 91 /* [ */) {
      const nm = /^\[(\d+)\/(\d+)\]$/.exec(w);
      if (nm) {
        const n = Number(nm[1]);
        const wk = Number(nm[2]);
        if (wk > n) fail(i, `working devices ${wk} exceed raid devices ${n} in ${w}`);
        a.raidDisks = n;
        a.workingDisks = wk;
      } else if (/^\[[U_]*\]$/.test(w)) a.pattern = w.slice(1, -1);
      else fail(i, `bad bracket "${w}": expected [n/m] or a [U_] pattern`);
    } else if (w === "super" && next !== undefined) {
      setMetadata(a, next);
      k++;
    } else if (w === "level" && next !== undefined && /^\d+,?$/.test(next)) {
      g.levelNum = parseInt(next, 10);
      k++;
    } else if (w === "algorithm" && next !== undefined && /^\d+$/.test(next)) {
      g.algorithm = Number(next);
      k++;
    } else if (/^\d+[kK]$/.test(w) && next !== undefined && /^(chunks?,?|rounding)$/.test(next)) {
      if (next === "rounding") g.roundingKiB = parseInt(w, 10);
      else g.chunkKiB = parseInt(w, 10);
      k++;
    } else if (/^\d+$/.test(w) && next !== undefined && next.endsWith("-copies")) {
      const n = Number(w);
      if (next === "near-copies") g.nearCopies = n;
      else if (next === "far-copies") g.farCopies = n;
      else if (next === "offset-copies") g.offsetCopies = n;
      else a.extraStatus.push(w, next);
      k++;
    } else if (
      /^\d+$/.test(w) && next === "devices" && tok[k + 2] === "per" && tok[k + 3] === "set"
    ) {
      g.devicesPerSet = Number(w);
      k += 3;
    } else a.extraStatus.push(w);
  }
}

function setMetadata(a: MdArray, v: string): void {
  a.metadata = v;
  if (!v.startsWith("external:")) return;
  const ext = v.slice("external:".length);
  a.external = ext;
  // Member of a container: "/md127/0", or "-md127/0" while mdmon holds it read-only.
  const sub = /^[/-]?([^/]+)\/(.+)$/.exec(ext);
  if (sub) {
    a.container = sub[1];
    a.subarray = sub[2];
  }
}

function progressSync(action: MdSyncAction, m: RegExpExecArray): MdSync {
  return {
    action,
    status: "running",
    percent: Number(m[2]),
    doneBlocks: Number(m[3]),
    totalBlocks: Number(m[4]),
    finishMinutes: m[5] !== undefined ? Number(m[5]) : null,
    speedKiBps: m[6] !== undefined ? Number(m[6]) : null,
  };
}

function queuedSync(action: MdSyncAction, status: MdSyncStatus): MdSync {
  return {
    action,
    status,
    percent: null,
    doneBlocks: null,
    totalBlocks: null,
    finishMinutes: null,
    speedKiBps: null,
  };
}

function bitmapOf(m: RegExpExecArray): MdBitmap {
  const unit = m[5] ?? "B";
  return {
    pagesUsed: Number(m[1]),
    pagesTotal: Number(m[2]),
    memKiB: Number(m[3]),
    chunk: `${m[4]}${m[5] ?? ""}`,
    chunkBytes: Number(m[4]) * UNIT_BYTES[unit],
    file: m[6] !== undefined ? m[6].trim() : null,
  };
}

/** Lines of a parse result that were not understood, as `line N: text` for people. */
export function describeUnknown(lines: readonly MdUnknownLine[]): string[] {
  return lines.map((u) =>
    `line ${u.line}${u.array ? ` (in ${u.array})` : ""} not understood: ${JSON.stringify(u.text)}`
  );
}
