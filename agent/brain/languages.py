"""The languages a business answers in: ISO 639-1 codes and their names, what the agent says without
the model in each language we ship lines for, and a small guess at which language a caller spoke.

The model follows the caller's language itself (render.py tells it which ones it may use); what is
ours is said in the brain's first language, and what the call report records comes from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# ISO 639-1: every two-letter code, with the English name the instructions use
_CODES = (
    "aa:Afar ab:Abkhazian ae:Avestan af:Afrikaans ak:Akan am:Amharic an:Aragonese ar:Arabic "
    "as:Assamese av:Avaric ay:Aymara az:Azerbaijani ba:Bashkir be:Belarusian bg:Bulgarian bi:Bislama "
    "bm:Bambara bn:Bengali bo:Tibetan br:Breton bs:Bosnian ca:Catalan ce:Chechen ch:Chamorro "
    "co:Corsican cr:Cree cs:Czech cu:Church_Slavic cv:Chuvash cy:Welsh da:Danish de:German "
    "dv:Dhivehi dz:Dzongkha ee:Ewe el:Greek en:English eo:Esperanto es:Spanish et:Estonian "
    "eu:Basque fa:Persian ff:Fulah fi:Finnish fj:Fijian fo:Faroese fr:French fy:Western_Frisian "
    "ga:Irish gd:Scottish_Gaelic gl:Galician gn:Guarani gu:Gujarati gv:Manx ha:Hausa he:Hebrew "
    "hi:Hindi ho:Hiri_Motu hr:Croatian ht:Haitian_Creole hu:Hungarian hy:Armenian hz:Herero "
    "ia:Interlingua id:Indonesian ie:Interlingue ig:Igbo ii:Sichuan_Yi ik:Inupiaq io:Ido "
    "is:Icelandic it:Italian iu:Inuktitut ja:Japanese jv:Javanese ka:Georgian kg:Kongo ki:Kikuyu "
    "kj:Kuanyama kk:Kazakh kl:Kalaallisut km:Khmer kn:Kannada ko:Korean kr:Kanuri ks:Kashmiri "
    "ku:Kurdish kv:Komi kw:Cornish ky:Kyrgyz la:Latin lb:Luxembourgish lg:Ganda li:Limburgish "
    "ln:Lingala lo:Lao lt:Lithuanian lu:Luba-Katanga lv:Latvian mg:Malagasy mh:Marshallese "
    "mi:Maori mk:Macedonian ml:Malayalam mn:Mongolian mr:Marathi ms:Malay mt:Maltese my:Burmese "
    "na:Nauru nb:Norwegian_Bokmal nd:North_Ndebele ne:Nepali ng:Ndonga nl:Dutch nn:Norwegian_Nynorsk "
    "no:Norwegian nr:South_Ndebele nv:Navajo ny:Chichewa oc:Occitan oj:Ojibwa om:Oromo or:Odia "
    "os:Ossetian pa:Punjabi pi:Pali pl:Polish ps:Pashto pt:Portuguese qu:Quechua rm:Romansh "
    "rn:Kirundi ro:Romanian ru:Russian rw:Kinyarwanda sa:Sanskrit sc:Sardinian sd:Sindhi "
    "se:Northern_Sami sg:Sango si:Sinhala sk:Slovak sl:Slovenian sm:Samoan sn:Shona so:Somali "
    "sq:Albanian sr:Serbian ss:Swati st:Southern_Sotho su:Sundanese sv:Swedish sw:Swahili ta:Tamil "
    "te:Telugu tg:Tajik th:Thai ti:Tigrinya tk:Turkmen tl:Tagalog tn:Tswana to:Tongan tr:Turkish "
    "ts:Tsonga tt:Tatar tw:Twi ty:Tahitian ug:Uyghur uk:Ukrainian ur:Urdu uz:Uzbek ve:Venda "
    "vi:Vietnamese vo:Volapuk wa:Walloon wo:Wolof xh:Xhosa yi:Yiddish yo:Yoruba za:Zhuang "
    "zh:Chinese zu:Zulu"
)
NAMES: dict[str, str] = {
    code: name.replace("_", " ") for code, name in (pair.split(":") for pair in _CODES.split())
}


def check_code(value: str) -> str:
    """A brain's language: an ISO 639-1 code as written ("es"), never a name or a locale."""
    if value in NAMES:
        return value
    hint = ""
    lowered = value.lower()
    if lowered[:2] in NAMES and (lowered == lowered[:2] or lowered[2:3] in ("-", "_")):
        hint = f" (write {lowered[:2]!r})"
    else:
        by_name = next((c for c, n in NAMES.items() if n.lower() == lowered), None)
        if by_name:
            hint = f" (write {by_name!r})"
    raise ValueError(f"not an ISO 639-1 language code: {value!r}{hint}")


def name(code: str) -> str:
    return NAMES[code]


# how each language says "AI" in the greeting's first sentence (the disclosure)
AI_WORDS: dict[str, str] = {"en": "AI", "es": "IA", "fr": "IA", "it": "IA", "pt": "IA", "de": "KI"}


# What callers hear when the model is down, for the languages we ship lines for; a brain whose first
# language is another writes its own (calls.model_down). The espeak-ng voice is the code itself, but
# for English, where espeak's default is British.
MODEL_DOWN_LINES: dict[str, dict[str, str]] = {
    "en": {
        "voice": "en-us",
        "hold_line": "One moment, please.",
        "transfer_line": "I'm sorry, I'm having technical trouble. Let me put you through to a member "
        "of our team.",
        "message_line": "I'm sorry, I'm having technical trouble right now. Please leave your name, your "
        "number and a short message after the tone, and we will call you back.",
        "goodbye_line": "Thank you, we have your message. Goodbye.",
        "busy_line": "I'm sorry, all our lines are busy right now. Please leave your name, your number "
        "and a short message after the tone, and we will call you back.",
    },
    "es": {
        "voice": "es",
        "hold_line": "Un momento, por favor.",
        "transfer_line": "Lo siento, tengo un problema técnico. Le paso con nuestro equipo.",
        "message_line": "Lo siento, tengo un problema técnico. Deje su nombre, su número y un mensaje "
        "breve después del tono, y le llamaremos.",
        "goodbye_line": "Gracias, tenemos su mensaje. Adiós.",
        "busy_line": "Lo siento, todas nuestras líneas están ocupadas. Deje su nombre, su número y un "
        "mensaje breve después del tono, y le llamaremos.",
    },
    "fr": {
        "voice": "fr",
        "hold_line": "Un instant, s'il vous plaît.",
        "transfer_line": "Désolé, j'ai un problème technique. Je vous passe un membre de notre équipe.",
        "message_line": "Désolé, j'ai un problème technique. Laissez votre nom, votre numéro et un court "
        "message après le bip, et nous vous rappellerons.",
        "goodbye_line": "Merci, nous avons votre message. Au revoir.",
        "busy_line": "Désolé, toutes nos lignes sont occupées. Laissez votre nom, votre numéro et un court "
        "message après le bip, et nous vous rappellerons.",
    },
}

# Common short words of each language: enough to tell a caller's sentence apart, not a detector.
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the and is are you your i my me to of in for on it this that what when do does can could "
        "would have has with at we our please thanks thank hi hello yes no".split()
    ),
    "es": frozenset(
        "el la los las y es son usted ustedes yo mi me de del en para por que qué cuando cuándo "
        "puede puedo quiero tiene tienen con un una hola gracias sí por favor buenos buenas días "
        "está están horario abren cierran".split()
    ),
    "fr": frozenset(
        "le la les et est sont vous votre je mon ma moi de du des en pour sur que quoi quand "
        "pouvez puis voudrais avez avec un une bonjour merci oui non s'il plaît êtes ouvert".split()
    ),
    "de": frozenset(
        "der die das und ist sind sie ihr ich mein mich zu von in für auf was wann können kann "
        "möchte haben hat mit ein eine hallo danke ja nein bitte guten tag".split()
    ),
    "it": frozenset(
        "il lo la gli le e è sono lei io mio mi di del in per su che cosa quando può posso vorrei "
        "avete ha con un una buongiorno ciao grazie sì no".split()
    ),
    "pt": frozenset(
        "o a os as e é são você vocês eu meu me de do da em para por que quando pode posso quero "
        "tem têm com um uma olá obrigado obrigada sim não bom dia".split()
    ),
}
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_MIN_HITS = 2  # fewer stopwords than this is too little to say


def words_of(text: str) -> list[str]:
    """The words of `text`, lower-cased, in any script (apostrophes kept inside: "don't", "j'en")."""
    return _WORD.findall(text.lower())


def guess_language(text: str, among: Iterable[str] | None = None) -> str | None:
    """The language whose common words `text` uses most, or None when too few or tied; `among` limits
    the guess to these languages (a business's).

    Covers en, es, fr, de, it, pt only: a caller in another language is reported as unknown, never as
    a wrong language."""
    words = words_of(text)
    allowed = set(_STOPWORDS) if among is None else set(among) & set(_STOPWORDS)
    hits = {code: sum(w in stop for w in words) for code, stop in _STOPWORDS.items() if code in allowed}
    ranked = sorted(hits.items(), key=lambda kv: kv[1], reverse=True) + [("", 0), ("", 0)]
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < _MIN_HITS or top == second:
        return None
    return best
