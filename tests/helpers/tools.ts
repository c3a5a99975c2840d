/**
 * Test helper: decide whether a test that drives a real tool can run, and say why not.
 *
 * ```ts
 * const missing = missingTools(["promtool"]);
 * Deno.test({ name: "...", ignore: missing !== undefined, fn() {...} });
 * ```
 *
 * Every ignore reason is printed as one machine-readable line,
 * `KW-IGNORED <test file>: missing <tool> (package <pkg>)` or `KW-IGNORED <test file>: <reason>`.
 * `.ci/run` reads these lines and fails when the named package is listed in
 * `.ci/apt-packages.txt` and installed: an installed tool whose test is still ignored is a
 * hidden skip (e.g. the tool is not where the test looks for it).
 */

/** Each tool the tests drive, and the Debian package (in .ci/apt-packages.txt) that ships it. */
export const TOOL_PACKAGES = {
  "chromium": "chromium",
  "corosync": "corosync",
  "corosync-qdevice": "corosync-qdevice",
  "corosync-qnetd": "corosync-qnetd",
  "dbus-daemon": "dbus",
  "fw_printenv": "libubootenv-tool",
  "fw_setenv": "libubootenv-tool",
  "grub-editenv": "grub-common",
  "ip": "iproute2",
  "keepalived": "keepalived",
  "losetup": "util-linux",
  "mkenvimage": "u-boot-tools",
  "mksquashfs": "squashfs-tools",
  "mount": "util-linux",
  "node": "nodejs",
  "openssl": "openssl",
  "perl": "perl-base",
  "ping": "iputils-ping",
  "prometheus": "prometheus",
  "promtool": "prometheus",
  "rauc": "rauc",
  "setpriv": "util-linux",
  "setsid": "util-linux",
  "smartctl": "smartmontools",
  "systemd-analyze": "systemd",
  "systemd-notify": "systemd",
  "tc": "iproute2",
  "umount": "util-linux",
  "unsquashfs": "squashfs-tools",
  "wrk": "wrk",
} as const;

/** A tool name known to {@link TOOL_PACKAGES}. */
export type Tool = keyof typeof TOOL_PACKAGES;

/** Directories searched besides $PATH (root's tools live in sbin, often not on a user PATH). */
const EXTRA_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/**
 * Absolute path of an executable `tool` on $PATH or in an sbin/bin directory, or null.
 * With `path` given, only that colon-separated list is searched.
 */
export function which(tool: string, path?: string): string | null {
  const dirs = path === undefined
    ? [...(Deno.env.get("PATH") ?? "").split(":").filter((d) => d), ...EXTRA_DIRS]
    : path.split(":").filter((d) => d);
  for (const d of dirs) {
    const p = `${d}/${tool}`;
    try {
      const st = Deno.statSync(p);
      if (st.isFile && ((st.mode ?? 0o755) & 0o111) !== 0) return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** The test file that called into this helper (for the KW-IGNORED line). */
function callerFile(): string {
  const here = new URL(import.meta.url).pathname;
  const testsDir = new URL("../", import.meta.url).pathname;
  for (const line of (new Error().stack ?? "").split("\n")) {
    const m = line.match(/(file:\/\/[^\s)]+?):\d+:\d+\)?$/);
    if (!m) continue;
    const p = new URL(m[1]).pathname;
    if (p === here) continue;
    return p.startsWith(testsDir) ? `tests/${p.slice(testsDir.length)}` : p;
  }
  return "unknown test file";
}

/**
 * Record that tests in the calling file are ignored for `reason`, printing the
 * `KW-IGNORED` line, and return the reason. Use for conditions that are not a tool
 * (fixtures absent, a kernel feature missing). `file` defaults to the caller.
 */
export function ignored(
  reason: string,
  file: string = callerFile(),
  report: (line: string) => void = console.warn,
): string {
  report(`KW-IGNORED ${file}: ${reason}`);
  return reason;
}

/**
 * Why a test needing `tools` (and root, with `{ root: true }`) cannot run here, or undefined
 * when it can. Prints one `KW-IGNORED` line per missing tool, naming its package.
 */
export function missingTools(
  tools: readonly Tool[],
  opts: {
    /** Also needs uid 0. */
    root?: boolean;
    /** Search only this PATH (tests of this helper). */
    path?: string;
    /** Test file named in the KW-IGNORED line (default: the caller). */
    file?: string;
    /** Where KW-IGNORED lines go (default console.warn). */
    report?: (line: string) => void;
  } = {},
): string | undefined {
  const file = opts.file ?? callerFile();
  const reasons: string[] = [];
  if (opts.root && Deno.uid() !== 0) reasons.push(ignored("needs root", file, opts.report));
  for (const t of tools) {
    if (which(t, opts.path) === null) {
      reasons.push(ignored(`missing ${t} (package ${TOOL_PACKAGES[t]})`, file, opts.report));
    }
  }
  return reasons.length ? reasons.join("; ") : undefined;
}
