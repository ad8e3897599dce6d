/**
 * The built-in encoder's tokenizer: lowercase, then every maximal run of letters is a word; anything
 * that is not a letter (spaces, digits, punctuation) separates words.
 * Python equivalent: `re.findall(r"[^\W\d_]+", prompt.lower())` (identical for ASCII prompts).
 */
export function splitWords(prompt: string): string[] {
  return prompt.toLowerCase().match(/\p{L}+/gu) ?? [];
}
