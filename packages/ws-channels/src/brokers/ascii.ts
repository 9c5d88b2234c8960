/**
 * Whether `bytes[start..end)` are the UTF-8 bytes of `text`, compared unit by unit with no call
 * into the runtime while `text`'s units are ASCII (below 0x80: one byte each, itself).
 * @returns undefined if a unit past ASCII is met before the answer is known: compare as UTF-8 then.
 */
export function compareAscii(bytes: Buffer, start: number, end: number, text: string): boolean | undefined {
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0x80) return undefined;
    if (start + i >= end || bytes[start + i] !== unit) return false;
  }
  return end - start === length;
}

/** The most units `isAscii` reads: longer names are measured and written by the runtime. */
const SHORT = 64;

/** Whether `text` is short (up to 64 units) and ASCII: then `writeAscii` writes it, one byte per unit. */
export function isAscii(text: string): boolean {
  if (text.length > SHORT) return false;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** Writes an ASCII `text` (see `isAscii`) at `bytes[at]`, with no call into the runtime. */
export function writeAscii(text: string, bytes: Buffer, at: number): void {
  for (let i = 0; i < text.length; i++) bytes[at + i] = text.charCodeAt(i);
}
