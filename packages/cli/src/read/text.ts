// Stored values as text: for tables, CSV and the report page alike.

/** A stored value as text: null and undefined as empty, objects as JSON. */
export function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value as string | number | boolean | bigint | symbol);
}

/** A value as one CSV field (quoted when it holds a comma, quote or line break). */
export function csvField(value: unknown): string {
  const s = text(value);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}
