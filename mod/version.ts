/** keepwire's version (semver); the updater compares bundle versions against it. */
export const VERSION = "0.1.0";
