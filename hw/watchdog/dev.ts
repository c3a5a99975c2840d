/**
 * The `dev` watchdog driver: Linux /dev/watchdog (watchdog-api.rst).
 *
 * - open starts the watchdog; any write pets it; writing 'V' right before close
 *   (magic close) stops it, a plain close leaves it running (reset follows);
 * - the device is single-open: a second opener gets EBUSY (systemd's
 *   RuntimeWatchdogSec= or the watchdog daemon may own it);
 * - the timeout is set with the WDIOC_SETTIMEOUT ioctl, which returns the value
 *   the hardware really uses. The system calls are sys.ts (libc through FFI, else
 *   Deno.open without ioctl); without ioctl the driver falls back to a writable sysfs
 *   `timeout` attribute (mainline kernels export it read-only, so usually the
 *   driver's default timeout stays and info().warning says so). The ioctl numbers
 *   are ioctl.ts.
 * @module
 */
import { basename, join } from "node:path";
import type { Clock } from "../../mod/module.ts";
import { READ_LIMITS, readTextFileBoundedSync } from "../../mod/fs.ts";
import {
  assertWatchdogTimeout,
  type HardwareWatchdog,
  type WatchdogCloseOptions,
  WatchdogError,
  type WatchdogInfo,
} from "./types.ts";
import { WDIOC, WDIOF } from "./ioctl.ts";
import {
  defaultWatchdogSys,
  libcUnavailableReason,
  type WatchdogSys,
  WatchdogSysError,
} from "./sys.ts";

/** Options of {@link DevWatchdog}. */
export interface DevWatchdogOptions {
  /** Device path, e.g. /dev/watchdog or /dev/watchdog1. */
  device: string;
  /** Timeout applied on open (seconds); undefined keeps the driver's. */
  timeoutSec?: number;
  /** The driver's sysfs dir; default /sys/class/watchdog/<watchdogN>; null: none. */
  sysfsDir?: string | null;
  /** System calls (default: libc via FFI, else Deno.open). */
  sys?: WatchdogSys;
  /** Clock for lastPetAt. */
  clock?: Pick<Clock, "now">;
}

/** sysfs dir of a device path: /dev/watchdog -> watchdog0, /dev/watchdogN -> watchdogN. */
export function watchdogSysfsDir(device: string): string | null {
  const b = basename(device);
  if (b === "watchdog") return "/sys/class/watchdog/watchdog0";
  if (/^watchdog\d+$/.test(b)) return `/sys/class/watchdog/${b}`;
  return null;
}

function readSysfs(dir: string | null, attr: string): string | null {
  if (!dir) return null;
  try {
    return readTextFileBoundedSync(join(dir, attr), READ_LIMITS.procfs, "sysfs attribute").trim();
  } catch {
    return null;
  }
}

const PET = new Uint8Array([0]);
const MAGIC = new Uint8Array([0x56]); // 'V'

/** Linux /dev/watchdog driver. */
export class DevWatchdog implements HardwareWatchdog {
  /** Driver name. */
  readonly driver = "dev" as const;
  readonly #device: string;
  readonly #timeoutSec: number | undefined;
  readonly #sysfs: string | null;
  readonly #sys: WatchdogSys;
  readonly #clock: Pick<Clock, "now">;
  #fd: number | null = null;
  #info: WatchdogInfo;

  /** Build (nothing is opened until open()). */
  constructor(opts: DevWatchdogOptions) {
    if (opts.timeoutSec !== undefined) assertWatchdogTimeout(opts.timeoutSec, opts.device);
    this.#device = opts.device;
    this.#timeoutSec = opts.timeoutSec;
    this.#sysfs = opts.sysfsDir === undefined ? watchdogSysfsDir(opts.device) : opts.sysfsDir;
    this.#sys = opts.sys ?? defaultWatchdogSys();
    this.#clock = opts.clock ?? { now: () => Date.now() };
    this.#info = {
      driver: "dev",
      device: opts.device,
      open: false,
      identity: null,
      timeoutSec: null,
      timeoutSource: null,
      magicClose: null,
      nowayout: null,
      lastResetByWatchdog: null,
      pets: 0,
      lastPetAt: null,
      warning: null,
    };
  }

  /** Which system call layer is in use (`ffi` or `deno`). */
  get sysKind(): string {
    return this.#sys.kind;
  }

  #err(code: WatchdogError["code"], msg: string, cause?: unknown): WatchdogError {
    return new WatchdogError(code, `${this.#device}: ${msg}`, this.#device, { cause });
  }

  /** ioctl returning the int at the start of the buffer, or null when the driver lacks it. */
  #ioctlInt(request: number, value = 0): number | null {
    if (this.#fd === null || !this.#sys.canIoctl) return null;
    const buf = new Int32Array([value]);
    try {
      this.#sys.ioctl(this.#fd, request, new Uint8Array(buf.buffer));
      return buf[0];
    } catch (e) {
      if (e instanceof WatchdogSysError && (e.errno === 25 || e.errno === 95 || e.errno === 22)) {
        return null;
      }
      throw e;
    }
  }

  #querySupport(): void {
    if (this.#fd !== null && this.#sys.canIoctl) {
      const buf = new Uint8Array(40);
      try {
        this.#sys.ioctl(this.#fd, WDIOC.GETSUPPORT, buf);
        const options = new DataView(buf.buffer).getUint32(0, true);
        const id = new TextDecoder().decode(buf.subarray(8, 40)).replace(/\0.*$/s, "");
        this.#info.identity = id || null;
        this.#info.magicClose = (options & WDIOF.MAGICCLOSE) !== 0;
      } catch {
        // not a watchdog ioctl interface (or a fake device): leave unknown
      }
      try {
        const boot = this.#ioctlInt(WDIOC.GETBOOTSTATUS);
        if (boot !== null) this.#info.lastResetByWatchdog = (boot & WDIOF.CARDRESET) !== 0;
      } catch {
        // unknown
      }
    }
    this.#info.identity ??= readSysfs(this.#sysfs, "identity");
    const nowayout = readSysfs(this.#sysfs, "nowayout");
    if (nowayout !== null) this.#info.nowayout = nowayout === "1";
    if (this.#info.lastResetByWatchdog === null) {
      const bs = readSysfs(this.#sysfs, "bootstatus");
      if (bs !== null && /^\d+$/.test(bs)) {
        this.#info.lastResetByWatchdog = (Number(bs) & WDIOF.CARDRESET) !== 0;
      }
    }
  }

  #readTimeout(): void {
    let t: number | null = null;
    try {
      t = this.#ioctlInt(WDIOC.GETTIMEOUT);
    } catch {
      t = null;
    }
    if (t !== null && t > 0) {
      this.#info.timeoutSec = t;
      this.#info.timeoutSource = "ioctl";
      return;
    }
    const s = readSysfs(this.#sysfs, "timeout");
    if (s !== null && /^\d+$/.test(s)) {
      this.#info.timeoutSec = Number(s);
      this.#info.timeoutSource = "sysfs";
    }
  }

  /** Open the device (the watchdog starts), apply the timeout, pet once. */
  open(): Promise<void> {
    if (this.#fd !== null) return Promise.reject(this.#err("invalid", "already open"));
    try {
      this.#fd = this.#sys.open(this.#device);
    } catch (e) {
      return Promise.reject(this.#openError(e));
    }
    this.#info = { ...this.#info, open: true, pets: 0, lastPetAt: null, warning: null };
    try {
      this.#querySupport();
      this.#readTimeout();
      if (this.#timeoutSec !== undefined) this.#applyTimeout(this.#timeoutSec, true);
      this.#petSync();
    } catch (e) {
      // Nobody will pet a watchdog we failed to set up: stop it before failing.
      this.#closeSync(true);
      return Promise.reject(e);
    }
    return Promise.resolve();
  }

  #openError(e: unknown): WatchdogError {
    if (!(e instanceof WatchdogSysError)) {
      return this.#err("io", `open failed: ${(e as Error).message}`, e);
    }
    switch (e.errno) {
      case 2:
        return this.#err(
          "missing",
          "no such device (no watchdog driver loaded? load one, e.g. softdog or iTCO_wdt, " +
            "or set hardware.watchdog.driver to none or mock)",
          e,
        );
      case 6:
      case 19:
        return this.#err(
          "missing",
          `device node exists but no watchdog driver is behind it (${e.code})`,
          e,
        );
      case 16:
        return this.#err(
          "busy",
          "busy (EBUSY): another process owns the single-open watchdog, e.g. systemd " +
            "(RuntimeWatchdogSec=) or the watchdog daemon; set hardware.watchdog.driver to none " +
            "when systemd pets it",
          e,
        );
      case 1:
      case 13:
        return this.#err(
          "permission",
          `permission denied (${e.code}); keepwire must run as root`,
          e,
        );
      default:
        return this.#err("io", `open failed: ${e.message}`, e);
    }
  }

  #petSync(): void {
    if (this.#fd === null) throw this.#err("not-open", "pet before open");
    try {
      this.#sys.write(this.#fd, PET);
    } catch (e) {
      throw this.#err("io", `pet failed: ${(e as Error).message}`, e);
    }
    this.#info.pets++;
    this.#info.lastPetAt = this.#clock.now();
  }

  /** Pet by writing one byte (not 'V'). */
  pet(): Promise<void> {
    try {
      this.#petSync();
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** WDIOC_SETTIMEOUT, else sysfs; `tolerate` keeps going (with a warning) when unsupported. */
  #applyTimeout(sec: number, tolerate: boolean): number {
    if (this.#fd === null) throw this.#err("not-open", "setTimeout before open");
    let why = "";
    if (this.#sys.canIoctl) {
      const buf = new Int32Array([sec]);
      try {
        this.#sys.ioctl(this.#fd, WDIOC.SETTIMEOUT, new Uint8Array(buf.buffer));
        const actual = buf[0] > 0 ? buf[0] : sec;
        this.#info.timeoutSec = actual;
        this.#info.timeoutSource = "ioctl";
        return actual;
      } catch (e) {
        if (!(e instanceof WatchdogSysError)) throw e;
        if (e.errno === 22) {
          throw this.#err(
            "invalid",
            `the driver rejected a timeout of ${sec} s (EINVAL: out of its range)`,
            e,
          );
        }
        if (e.errno !== 25 && e.errno !== 95) {
          throw this.#err("io", `WDIOC_SETTIMEOUT failed: ${e.message}`, e);
        }
        why = `the driver has no WDIOC_SETTIMEOUT (${e.code})`;
      }
    } else {
      why = `no ioctl without FFI (${libcUnavailableReason() || "FFI unavailable"})`;
    }
    const attr = this.#sysfs ? join(this.#sysfs, "timeout") : null;
    if (attr) {
      let writable = false;
      try {
        const st = Deno.statSync(attr);
        writable = st.mode !== null && (st.mode & 0o222) !== 0;
      } catch {
        // absent
      }
      if (writable) {
        try {
          Deno.writeTextFileSync(attr, `${sec}\n`);
          const back = readSysfs(this.#sysfs, "timeout");
          const actual = back !== null && /^\d+$/.test(back) ? Number(back) : sec;
          this.#info.timeoutSec = actual;
          this.#info.timeoutSource = "sysfs";
          return actual;
        } catch (e) {
          why += `; writing ${attr} failed: ${(e as Error).message}`;
        }
      } else {
        why += `; ${attr} is absent or read-only`;
      }
    }
    const msg = `cannot set the timeout to ${sec} s: ${why}`;
    if (tolerate && this.#info.timeoutSec !== null) {
      this.#info.warning = `${msg}; the driver's timeout of ${this.#info.timeoutSec} s stays`;
      return this.#info.timeoutSec;
    }
    throw this.#err(
      "unsupported",
      this.#info.timeoutSec === null ? `${msg}; the current timeout is unknown` : msg,
    );
  }

  /** Set the timeout (seconds); returns the value the driver really uses. */
  setTimeout(sec: number): Promise<number> {
    try {
      assertWatchdogTimeout(sec, this.#device);
      return Promise.resolve(this.#applyTimeout(sec, false));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Returns an error when the magic write failed (the fd is closed anyway). */
  #closeSync(magic: boolean): WatchdogError | null {
    if (this.#fd === null) return null;
    let err: WatchdogError | null = null;
    if (magic) {
      try {
        this.#sys.write(this.#fd, MAGIC);
      } catch (e) {
        err = this.#err(
          "io",
          `magic close failed, the watchdog keeps running: ${(e as Error).message}`,
          e,
        );
      }
    }
    try {
      this.#sys.close(this.#fd);
    } catch {
      // the kernel released it anyway
    }
    this.#fd = null;
    this.#info.open = false;
    return err;
  }

  /** Close; magic 'V' first only when `magic` (orderly stop). */
  close(opts: WatchdogCloseOptions): Promise<void> {
    const err = this.#closeSync(opts.magic);
    return err ? Promise.reject(err) : Promise.resolve();
  }

  /** Current state. */
  info(): WatchdogInfo {
    return { ...this.#info };
  }
}
