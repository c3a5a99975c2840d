/**
 * The one pattern of slot class names and of bootnames, used by the config
 * schema, the bundle manifest schema and `bundle create`. Names are looked up
 * as own properties only (Object.hasOwn), so a class named like an Object
 * method (`constructor`) is just a name.
 * @module
 */

/** Slot class: a letter, then letters, digits, `_` or `-`; at most 64 characters. */
export const SLOT_CLASS_RE = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** What {@link SLOT_CLASS_RE} allows, for error messages. */
export const SLOT_CLASS_RULE = "a letter, then letters, digits, _ or - (at most 64 characters)";

/** Bootname (RAUC's `bootname`): a letter, then letters, digits or `_`; at most 32 characters. */
export const BOOTNAME_RE = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;
/** What {@link BOOTNAME_RE} allows, for error messages. */
export const BOOTNAME_RULE = "a letter, then letters, digits or _ (at most 32 characters)";
