/**
 * Wan2.1's prompt cleaning before the umT5 tokenizer (`clean='whitespace'` in wan/modules/tokenizers.py):
 *   ftfy.fix_text(text) -> html.unescape twice -> strip -> every whitespace run to one space -> strip.
 *
 * ftfy is a Python library; the steps of its default fix_text that can change a prompt after the
 * tokenizer's own NFKC normalization are done here: terminal escape codes removed, C1 controls read
 * as Windows-1252, Latin ligatures split, full-width characters narrowed, curly quotes straightened,
 * line breaks unified, control characters removed, NFC. Not done: its mojibake repair (text that
 * was decoded with the wrong encoding, e.g. `cafÃ©`), which stays as typed.
 * HTML unescaping and whitespace follow Python's html.unescape and re `\s` / str.strip exactly.
 */
import { HTML5_DROPPED, HTML5_NAMED, HTML5_REMAPPED } from './html5-entities.js';

/** Python's str.isspace() characters (what `\s` and strip() match on str). */
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const SPACE_RUNS = new RegExp(`[${PY_SPACE}]+`, 'g');
const EDGES = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');

const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;
const DROPPED = new Set(HTML5_DROPPED);

function replaceCharref(ref: string): string {
  if (ref[0] === '#') {
    const hex = ref[1] === 'x' || ref[1] === 'X';
    const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
    const num = hex ? parseInt(digits, 16) : Number(digits);
    const remapped = HTML5_REMAPPED[String(num)];
    if (remapped !== undefined) return remapped;
    if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
    if (DROPPED.has(num)) return '';
    return String.fromCodePoint(num);
  }
  const whole = HTML5_NAMED[ref];
  if (whole !== undefined) return whole;
  // The longest known prefix (HTML5 allows some names without ';'), as Python does.
  const chars = [...ref];
  for (let x = chars.length - 1; x > 1; x--) {
    const value = HTML5_NAMED[chars.slice(0, x).join('')];
    if (value !== undefined) return value + chars.slice(x).join('');
  }
  return `&${ref}`;
}

/** Python's html.unescape. */
export function unescapeHtml(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(CHARREF, (_m, ref: string) => replaceCharref(ref));
}

/** re.sub(r'\s+', ' ', text).strip() of Python, after strip(). */
export function collapseWhitespace(text: string): string {
  return text.replace(EDGES, '').replace(SPACE_RUNS, ' ').replace(EDGES, '');
}

const WINDOWS_1252_C1 = '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';
const LIGATURES: Record<string, string> = {
  '\u0132': 'IJ', '\u0133': 'ij', '\u0149': '\u02bcn', '\u01f1': 'DZ', '\u01f2': 'Dz', '\u01f3': 'dz', '\u01c4': 'D\u017d', '\u01c5': 'D\u017e',
  '\u01c6': 'd\u017e', '\u01c7': 'LJ', '\u01c8': 'Lj', '\u01c9': 'lj', '\u01ca': 'NJ', '\u01cb': 'Nj', '\u01cc': 'nj', '\ufb00': 'ff',
  '\ufb01': 'fi', '\ufb02': 'fl', '\ufb03': 'ffi', '\ufb04': 'ffl', '\ufb05': '\u017ft', '\ufb06': 'st',
};
const TERMINAL_ESCAPES = /\x1b\[((?:\d|;)*)([a-zA-Z])/g;
const C1 = /[\x80-\x9f]/g;
const LIGATURE_CHARS = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');
const WIDE = /[\u3000\uff01-\uffef]/g;
const SINGLE_QUOTES = /[\u02bc\u2018-\u201b]/g;
const DOUBLE_QUOTES = /[\u201c-\u201f]/g;
const LINE_BREAKS = /\r\n|[\r\u2028\u2029\x85]/g;
const CONTROL = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc\u{1d173}-\u{1d17a}\u{e0000}-\u{e007f}]/gu;

/** The subset of ftfy.fix_text described above. */
export function fixText(text: string): string {
  return text
    .replace(TERMINAL_ESCAPES, '')
    .replace(C1, (c) => WINDOWS_1252_C1[c.charCodeAt(0) - 0x80])
    .replace(LIGATURE_CHARS, (c) => LIGATURES[c])
    .replace(WIDE, (c) => c.normalize('NFKC'))
    .replace(SINGLE_QUOTES, "'")
    .replace(DOUBLE_QUOTES, '"')
    .replace(LINE_BREAKS, '\n')
    .replace(CONTROL, '')
    .normalize('NFC');
}

/** Wan's `whitespace` cleaning of a prompt. */
export function cleanPrompt(text: string): string {
  return collapseWhitespace(unescapeHtml(unescapeHtml(fixText(text))));
}
