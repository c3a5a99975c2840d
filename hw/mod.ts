/**
 * Hardware abstraction: the interfaces every driver implements. One driver per
 * file under hw/<kind>/, a mock with fault injection beside each real driver.
 * Only modules (mod/) use drivers.
 * @module
 */
export * from "./bypass/types.ts";
export * from "./raid/types.ts";
export * from "./watchdog/types.ts";
export * from "./boot/types.ts";
