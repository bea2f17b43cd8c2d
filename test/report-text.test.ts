// The demo's email subjects (the text the report shows) decode as their senders wrote them: encoded words, charsets, windows-1252.
import { describe, expect, it } from 'vitest';
import { decodeSubject, fixWindows1252, loadEmails } from '../examples/spam-data.js';

const head = (text: string, encoding: BufferEncoding = 'latin1') => Uint8Array.from(Buffer.from(text, encoding));

describe('decodeSubject', () => {
  it('decodes Q and B encoded words, folded lines, and drops the space between adjacent encoded words', () => {
    expect(decodeSubject(head('Subject: =?iso-8859-1?Q?Sitting_Bull_=FCber_alles?=\r\n\r\nbody'))).toBe('Sitting Bull über alles');
    expect(decodeSubject(head(`Subject: =?utf-8?B?${Buffer.from('Grüße £5').toString('base64')}?=\n\n`))).toBe('Grüße £5');
    expect(decodeSubject(head('Subject: one\n two =?iso-8859-1?Q?a?= =?iso-8859-1?Q?b?=\nFrom: x\n\n'))).toBe('one two ab');
    expect(decodeSubject(head('From: x\n\nSubject: not a header'))).toBeNull();
  });

  it("reads iso-8859-1 as windows-1252, with 0x80-0x9F as windows-1252's characters (Node's TextDecoder does not)", () => {
    expect(decodeSubject(head('Subject: =?iso-8859-1?Q?Matrox_Parhelia=99_now_=80_=93quoted=94?=\n\n'))).toBe('Matrox Parhelia™ now € “quoted”');
    expect(decodeSubject(head('Subject: Parhelia\x99 \xa3 cheap\nContent-Type: text/plain; charset=iso-8859-1\n\n'))).toBe('Parhelia™ £ cheap');
    expect(fixWindows1252('\x80\x81\x8a\x9f plain é')).toBe('€\x81ŠŸ plain é');
  });

  it('takes 8-bit text as UTF-8 when it is, else in the charset of the headers or the first MIME part', () => {
    expect(decodeSubject(head('Subject: Grüße\n\n', 'utf8'))).toBe('Grüße');
    const gb = Buffer.from('d6d0cec4', 'hex'); // 中文 in GB2312
    const mime = Buffer.concat([Buffer.from('Subject: '), gb, Buffer.from('\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/html; charset=GB2312\n\n')]);
    expect(decodeSubject(Uint8Array.from(mime))).toBe('中文');
  });

  it('keeps a double-byte character whose second byte the sender left as "_" in a Q word (Big5)', () => {
    // 一起 in Big5 is A4 40 B0 5F: the sender wrote "=A4@=B0_", where RFC 2047 reads "_" as a space.
    expect(decodeSubject(head('Subject: =?big5?Q?=A4@=B0_?=\n\n'))).toBe('一起');
    // Where the space reading decodes, "_" stays a space.
    expect(decodeSubject(head('Subject: =?big5?Q?=A4@_=A4@?=\n\n'))).toBe('一 一');
  });
});

describe("the corpus' subjects", () => {
  it('hold no replacement character, C1 control or undecoded encoded word; 2 of 6,046 are 8-bit in no declared charset', () => {
    const emails = loadEmails();
    expect(emails).toHaveLength(6046);
    expect(emails.filter((e) => e.subject.includes('\uFFFD')).map((e) => e.id)).toEqual([]);
    expect(emails.filter((e) => /[\x80-\x9f]/.test(e.subject)).map((e) => e.id)).toEqual([]);
    expect(emails.filter((e) => /=\?[^?\s]+\?[QqBb]\?/.test(e.subject)).map((e) => e.id)).toEqual([]);
    // Thai and Chinese bytes under "us-ascii" or no charset at all: shown as windows-1252, what they are unknown.
    expect(emails.filter((e) => /[ÃÂ][^\sa-z]/.test(e.subject)).map((e) => e.id)).toEqual(['spam-1/00072', 'spam-1/00243']);
    expect(emails.find((e) => e.id === 'hard-ham-1/00149')?.subject).toBe('Matrox Parhelia™ now available');
    expect(emails.find((e) => e.id === 'spam-1/00311')?.subject).toBe('re:我知道你需要更多機會,一起來吧!');
  });
});
