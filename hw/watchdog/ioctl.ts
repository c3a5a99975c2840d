/**
 * Numbers of the Linux watchdog ioctl interface (linux/watchdog.h,
 * Documentation/watchdog/watchdog-api.rst) and the errno names the driver reports.
 * Pure constants: no I/O.
 * @module
 */

const IOC_WRITE = 1;
const IOC_READ = 2;
const WATCHDOG_IOCTL_BASE = 0x57; // 'W'

/** `_IOC(dir, type, nr, size)` with the generic layout (x86_64, arm64, arm, riscv). */
export function watchdogIoc(dir: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (WATCHDOG_IOCTL_BASE << 8) | nr) >>> 0;
}

/** The watchdog ioctls (linux/watchdog.h). */
export const WDIOC = {
  /** `_IOR('W', 0, struct watchdog_info)`: options, firmware_version, identity[32]. */
  GETSUPPORT: watchdogIoc(IOC_READ, 0, 40),
  /** `_IOR('W', 1, int)`. */
  GETSTATUS: watchdogIoc(IOC_READ, 1, 4),
  /** `_IOR('W', 2, int)`: WDIOF_CARDRESET when the last reboot was the watchdog's. */
  GETBOOTSTATUS: watchdogIoc(IOC_READ, 2, 4),
  /** `_IOR('W', 5, int)`. */
  KEEPALIVE: watchdogIoc(IOC_READ, 5, 4),
  /** `_IOWR('W', 6, int)`: seconds in, actual seconds out. */
  SETTIMEOUT: watchdogIoc(IOC_READ | IOC_WRITE, 6, 4),
  /** `_IOR('W', 7, int)`. */
  GETTIMEOUT: watchdogIoc(IOC_READ, 7, 4),
  /** `_IOR('W', 10, int)`. */
  GETTIMELEFT: watchdogIoc(IOC_READ, 10, 4),
} as const;

/** Option bits of struct watchdog_info (linux/watchdog.h). */
export const WDIOF = {
  /** Reset was caused by the watchdog. */
  CARDRESET: 0x0020,
  /** The timeout can be set. */
  SETTIMEOUT: 0x0080,
  /** Supports magic close 'V'. */
  MAGICCLOSE: 0x0100,
  /** Keepalive ping reply. */
  KEEPALIVEPING: 0x8000,
} as const;

/** errno values the watchdog calls can fail with → their symbolic names. */
export const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  13: "EACCES",
  16: "EBUSY",
  19: "ENODEV",
  21: "EISDIR",
  22: "EINVAL",
  25: "ENOTTY",
  95: "EOPNOTSUPP",
};
