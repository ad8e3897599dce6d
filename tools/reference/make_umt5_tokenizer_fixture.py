"""Trains two tiny SentencePiece unigram models and writes reference tokenizations for the Node
tokenizer (src/text/sentencepiece.ts), into test/text/fixtures/:

  umt5-tiny-bytefallback.model  nmt_nfkc normalization (precompiled charsmap), byte fallback,
                                T5's special ids (pad 0, eos 1, unk 2, no bos), one user-defined piece;
  umt5-tiny-unk.model           identity normalization, no byte fallback (unknown runs -> one <unk>);
  umt5-tiny-tokens.json         { model file: [{ text, ids }] } from sentencepiece's own encoder,
                                plus `clean`: [{ text, cleaned }] for the HTML-unescape and whitespace
                                steps of Wan's prompt cleaning (Python's html.unescape and re \\s).

Run (Debian: apt-get install python3-sentencepiece):  /usr/bin/python3 tools/reference/make_umt5_tokenizer_fixture.py
"""
from __future__ import annotations

import html
import io
import json
import os
import re
import sys

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, 'test', 'text', 'fixtures')

CORPUS = """
A red fox jumps over the lazy dog in a snowy forest at dawn.
A cinematic shot of a golden retriever running along the beach, waves crashing, sunset light.
Two cats playing with a ball of yarn on a wooden floor, warm indoor lighting.
An astronaut riding a horse on the surface of the moon, photorealistic, 4k.
A bustling city street at night with neon signs reflecting on wet pavement.
The camera slowly pans across a field of sunflowers under a clear blue sky.
Un chat noir dort sur le rebord de la fenêtre pendant que la pluie tombe doucement.
Ein kleiner Hund läuft über eine grüne Wiese, die Sonne scheint hell.
Una mujer baila flamenco en una plaza iluminada por faroles antiguos.
Um barco navega lentamente pelo rio ao entardecer, reflexos dourados na água.
一只可爱的小猫在阳光下的草地上玩耍，镜头缓缓推进。
夜晚的城市街道，霓虹灯闪烁，雨水打湿了路面。
桜の花が風に舞い散る春の公園で、子供たちが遊んでいる。
서울의 밤거리, 네온사인이 빛나고 사람들이 걸어간다.
Кошка сидит на подоконнике и смотрит на падающий снег.
A timelapse of clouds rolling over mountain peaks, dramatic lighting, 24 fps, 1080p.
Close-up of raindrops falling on a leaf, macro photography, shallow depth of field.
A vintage car drives down a desert highway, dust trailing behind, heat haze.
""".strip().splitlines()

CASES = [
    'A red fox jumps over the lazy dog.',
    'a cinematic shot of a dog running on the beach at sunset',
    '',
    '   ',
    '  leading and trailing spaces  ',
    'many     inner   spaces',
    'tabs\tand\nnewlines\r\nhere',
    'ＡＢＣ　全角 １２３ ｶﾀｶﾅ',
    'ﬁne ligatures ﬂow ① ² ㍻',
    'cafe\u0301 vs café',
    'nbsp\u00a0here and zero\u200bwidth and bom\ufeff',
    'control\u0007chars\u001b[0m',
    'emoji 🐱🐶 and 😀',
    '一只可爱的小猫在阳光下的草地上玩耍，镜头缓缓推进。',
    '罕见的字：鬱龘齉',
    'Кошка сидит на подоконнике.',
    'Ein kleiner Hund läuft über eine grüne Wiese.',
    'user <extra_id_0> symbol and <extra_id_0><extra_id_0>',
    '“curly quotes” and ‘single’ — dashes…',
    'numbers 1234567890 and 3.14159',
    'x' * 40,
    '\u2581already escaped\u2581space',
    'ǅ ǈ Ǳ Ĳ',
    '\ud55c\uad6d\uc5b4 \u1112\u1161\u11ab',
]

CLEAN_CASES = [
    'Tom &amp; Jerry',
    '&amp;lt;b&amp;gt; double escaped',
    '&lt;tag&gt; &quot;q&quot; &#39;a&#39; &#x41;&#66;',
    '&amp &lt no semicolons &notit; &notin; &NotANamedEntity;',
    '&#0; &#x110000; &#128; &#150; &#xD800; &#65',
    '  spaces \t\n and\u3000ideographic\u00a0nbsp\u2028line  ',
    'file\x1cseparators\x1d\x1e\x1f and next\x85line',
    'zero\u200bwidth stays, bom\ufeffstays',
    '&eacute;t&eacute; &AElig; &aelig &copy2024',
]


def train(prefix: str, **extra) -> str:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 3),
        model_writer=model,
        model_type='unigram',
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        num_threads=1,
        shuffle_input_sentence=False,
        minloglevel=2,
        **extra,
    )
    path = os.path.join(OUT, f'{prefix}.model')
    with open(path, 'wb') as f:
        f.write(model.getvalue())
    return path


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    models = {
        'umt5-tiny-bytefallback.model': train(
            'umt5-tiny-bytefallback',
            vocab_size=420,
            byte_fallback=True,
            character_coverage=0.98,
            normalization_rule_name='nmt_nfkc',
            user_defined_symbols=['<extra_id_0>'],
        ),
        'umt5-tiny-unk.model': train(
            'umt5-tiny-unk',
            vocab_size=180,
            character_coverage=0.98,
            normalization_rule_name='identity',
        ),
    }
    expected = {'version': spm.__version__, 'models': {}, 'clean': []}
    for name, path in models.items():
        sp = spm.SentencePieceProcessor(model_file=path)
        expected['models'][name] = {
            'pieces': sp.get_piece_size(),
            'cases': [{'text': t, 'ids': sp.encode(t, out_type=int)} for t in CASES],
        }
    for text in CLEAN_CASES:
        cleaned = re.sub(r'\s+', ' ', html.unescape(html.unescape(text)).strip()).strip()
        expected['clean'].append({'text': text, 'cleaned': cleaned})
    with open(os.path.join(OUT, 'umt5-tiny-tokens.json'), 'w', encoding='utf-8') as f:
        # One case per line: readable diffs when the fixture is regenerated.
        text = json.dumps(expected, ensure_ascii=False, indent=1)
        text = re.sub(r'\[\s*([-0-9,\s]*?)\s*\]', lambda m: '[' + re.sub(r'\s+', ' ', m.group(1)) + ']', text)
        f.write(text + '\n')
    for name in models:
        print(name, os.path.getsize(os.path.join(OUT, name)), 'bytes')


if __name__ == '__main__':
    sys.exit(main())
