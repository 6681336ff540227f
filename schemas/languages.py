"""Language codes: everything is normalised to FLORES style `iso639_3_Script`.

This module is the one place that maps other code systems (ISO 639-1, BCP-47,
gettext locales, UDHR keys) to that form, and that says how words are counted
per script.

`normalize_lang(code, script=None)` accepts:

- FLORES codes `eng_Latn` (returned as is; a trailing variety subtag such as
  `lld_Latn_gherd` is dropped);
- ISO 639-1 `de`, deprecated `iw`/`in`/`ji`, ISO 639-2/B `ger`, `fre`;
- ISO 639-3 `deu`, `ast`, `cmn` with the script given or a known default;
- BCP-47 `zh-Hant`, `sr-Latn`, `de-1901`, `es-419`, `zh-TW` (region implies Hant);
- gettext locales `pt_BR`, `zh_Hans`, `sr_Latn`, `sr@latin`, `de_DE.UTF-8`.

ISO 639-1 and macrolanguage codes map to the individual language FLORES-200 uses
(ar→arb, fa→pes, lv→lvs, ms→zsm, sw→swh, uz→uzn, mn→khk, sq→als, ne→npi, no→nob …)
so that a language has one code across corpora. Explicit ISO 639-3 individual
codes are kept (UDHR's `cmn_Hans` stays `cmn_Hans`, it is not folded into `zho`).
Region subtags never create a new language: `pt_BR` is `por_Latn`.
"""

from __future__ import annotations

import difflib
import re

LANG_RE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")

# Scripts whose languages are written without spaces between words: fertility and
# continued-word rates count characters there instead of whitespace-separated words.
UNSPACED_SCRIPTS = frozenset({"Hani", "Hans", "Hant", "Jpan", "Hira", "Kana", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"})


def is_lang_code(code: str) -> bool:
    """True for a well-formed `iso639_3_Script` code such as `eng_Latn`."""
    return isinstance(code, str) and bool(LANG_RE.fullmatch(code))  # not .match: `$` allows a final newline


def script_of(lang: str) -> str:
    """The ISO 15924 script part of an `iso639_3_Script` code."""
    if not is_lang_code(lang):
        raise ValueError(f"not an iso639_3_Script language code: {lang!r}")
    return lang.split("_", 1)[1]


def word_segmentation(script: str) -> str:
    """'character' for scripts written without spaces, else 'whitespace'."""
    return "character" if script in UNSPACED_SCRIPTS else "whitespace"


# ISO 639-1 → (ISO 639-3 as FLORES-200 uses it, default script, English name).
_TABLE_639_1 = """
af afr Latn Afrikaans
ak aka Latn Akan
am amh Ethi Amharic
an arg Latn Aragonese
ar arb Arab Arabic
as asm Beng Assamese
av ava Cyrl Avaric
ay ayr Latn Aymara
az azj Latn Azerbaijani
ba bak Cyrl Bashkir
be bel Cyrl Belarusian
bg bul Cyrl Bulgarian
bm bam Latn Bambara
bn ben Beng Bengali
bo bod Tibt Tibetan
br bre Latn Breton
bs bos Latn Bosnian
ca cat Latn Catalan
ce che Cyrl Chechen
co cos Latn Corsican
cs ces Latn Czech
cv chv Cyrl Chuvash
cy cym Latn Welsh
da dan Latn Danish
de deu Latn German
dv div Thaa Dhivehi
dz dzo Tibt Dzongkha
ee ewe Latn Ewe
el ell Grek Greek
en eng Latn English
eo epo Latn Esperanto
es spa Latn Spanish
et est Latn Estonian
eu eus Latn Basque
fa pes Arab Persian
ff fuv Latn Fulah
fi fin Latn Finnish
fj fij Latn Fijian
fo fao Latn Faroese
fr fra Latn French
fy fry Latn Western Frisian
ga gle Latn Irish
gd gla Latn Scottish Gaelic
gl glg Latn Galician
gn grn Latn Guarani
gu guj Gujr Gujarati
gv glv Latn Manx
ha hau Latn Hausa
he heb Hebr Hebrew
hi hin Deva Hindi
hr hrv Latn Croatian
ht hat Latn Haitian Creole
hu hun Latn Hungarian
hy hye Armn Armenian
ia ina Latn Interlingua
id ind Latn Indonesian
ie ile Latn Interlingue
ig ibo Latn Igbo
ii iii Yiii Sichuan Yi
io ido Latn Ido
is isl Latn Icelandic
it ita Latn Italian
iu iku Cans Inuktitut
ja jpn Jpan Japanese
jv jav Latn Javanese
ka kat Geor Georgian
kg kon Latn Kongo
ki kik Latn Kikuyu
kk kaz Cyrl Kazakh
kl kal Latn Kalaallisut
km khm Khmr Khmer
kn kan Knda Kannada
ko kor Hang Korean
kr knc Latn Kanuri
ks kas Arab Kashmiri
ku kmr Latn Kurdish
kv kpv Cyrl Komi
kw cor Latn Cornish
ky kir Cyrl Kyrgyz
la lat Latn Latin
lb ltz Latn Luxembourgish
lg lug Latn Ganda
li lim Latn Limburgish
ln lin Latn Lingala
lo lao Laoo Lao
lt lit Latn Lithuanian
lu lub Latn Luba-Katanga
lv lvs Latn Latvian
mg plt Latn Malagasy
mh mah Latn Marshallese
mi mri Latn Maori
mk mkd Cyrl Macedonian
ml mal Mlym Malayalam
mn khk Cyrl Mongolian
mr mar Deva Marathi
ms zsm Latn Malay
mt mlt Latn Maltese
my mya Mymr Burmese
nb nob Latn Norwegian Bokmal
nd nde Latn North Ndebele
ne npi Deva Nepali
nl nld Latn Dutch
nn nno Latn Norwegian Nynorsk
no nob Latn Norwegian
nr nbl Latn South Ndebele
nv nav Latn Navajo
ny nya Latn Chichewa
oc oci Latn Occitan
om gaz Latn Oromo
or ory Orya Odia
os oss Cyrl Ossetian
pa pan Guru Punjabi
pl pol Latn Polish
ps pbt Arab Pashto
pt por Latn Portuguese
qu quy Latn Quechua
rm roh Latn Romansh
rn run Latn Rundi
ro ron Latn Romanian
ru rus Cyrl Russian
rw kin Latn Kinyarwanda
sa san Deva Sanskrit
sc srd Latn Sardinian
sd snd Arab Sindhi
se sme Latn Northern Sami
sg sag Latn Sango
si sin Sinh Sinhala
sk slk Latn Slovak
sl slv Latn Slovenian
sm smo Latn Samoan
sn sna Latn Shona
so som Latn Somali
sq als Latn Albanian
sr srp Cyrl Serbian
ss ssw Latn Swati
st sot Latn Southern Sotho
su sun Latn Sundanese
sv swe Latn Swedish
sw swh Latn Swahili
ta tam Taml Tamil
te tel Telu Telugu
tg tgk Cyrl Tajik
th tha Thai Thai
ti tir Ethi Tigrinya
tk tuk Latn Turkmen
tl tgl Latn Tagalog
tn tsn Latn Tswana
to ton Latn Tongan
tr tur Latn Turkish
ts tso Latn Tsonga
tt tat Cyrl Tatar
tw twi Latn Twi
ty tah Latn Tahitian
ug uig Arab Uyghur
uk ukr Cyrl Ukrainian
ur urd Arab Urdu
uz uzn Latn Uzbek
ve ven Latn Venda
vi vie Latn Vietnamese
wa wln Latn Walloon
wo wol Latn Wolof
xh xho Latn Xhosa
yi ydd Hebr Yiddish
yo yor Latn Yoruba
za zha Latn Zhuang
zh zho Hans Chinese
zu zul Latn Zulu
"""

# ISO 639-3 codes without a 639-1 code that Django, FLORES-200 or common corpora use:
# default script and name. FLORES languages with two scripts get the Latin (or,
# for Arabic, Kashmiri and Chinese, the majority) script as default.
_TABLE_639_3 = """
ace Latn Acehnese
acm Arab Mesopotamian Arabic
acq Arab Ta'izzi-Adeni Arabic
aeb Arab Tunisian Arabic
ajp Arab South Levantine Arabic
apc Arab North Levantine Arabic
ars Arab Najdi Arabic
ary Arab Moroccan Arabic
arz Arab Egyptian Arabic
ast Latn Asturian
awa Deva Awadhi
azb Arab South Azerbaijani
ban Latn Balinese
bem Latn Bemba
bho Deva Bhojpuri
bjn Latn Banjar
bug Latn Buginese
ceb Latn Cebuano
cjk Latn Chokwe
ckb Arab Central Kurdish
cmn Hans Mandarin Chinese
crh Latn Crimean Tatar
dik Latn Southwestern Dinka
dsb Latn Lower Sorbian
dyu Latn Dyula
fil Latn Filipino
fon Latn Fon
fur Latn Friulian
haw Latn Hawaiian
hne Deva Chhattisgarhi
hsb Latn Upper Sorbian
ilo Latn Ilocano
kab Latn Kabyle
kac Latn Jingpho
kam Latn Kamba
kbp Latn Kabiye
kea Latn Kabuverdianu
kmb Latn Kimbundu
lij Latn Ligurian
lmo Latn Lombard
ltg Latn Latgalian
lua Latn Luba-Kasai
luo Latn Luo
lus Latn Mizo
mag Deva Magahi
mai Deva Maithili
min Latn Minangkabau
mni Beng Meitei
mos Latn Mossi
nso Latn Northern Sotho
nus Latn Nuer
pag Latn Pangasinan
pap Latn Papiamento
prs Arab Dari
sat Olck Santali
scn Latn Sicilian
shn Mymr Shan
szl Latn Silesian
taq Latn Tamasheq
tpi Latn Tok Pisin
tum Latn Tumbuka
tzm Tfng Central Atlas Tamazight
udm Cyrl Udmurt
umb Latn Umbundu
vec Latn Venetian
war Latn Waray
yue Hant Cantonese
"""

# Other spellings of a language code: deprecated ISO 639-1, ISO 639-2/B, and ISO 639-3
# macrolanguages folded into the individual language FLORES-200 uses (as for 639-1).
ALIASES = {
    "iw": "heb", "in": "ind", "ji": "ydd", "jw": "jav", "mo": "ron",
    "alb": "als", "arm": "hye", "baq": "eus", "bur": "mya", "chi": "zho", "cze": "ces", "dut": "nld",
    "fre": "fra", "geo": "kat", "ger": "deu", "gre": "ell", "ice": "isl", "mac": "mkd", "mao": "mri",
    "may": "zsm", "per": "pes", "rum": "ron", "slo": "slk", "tib": "bod", "wel": "cym",
    "ara": "arb", "aym": "ayr", "aze": "azj", "fas": "pes", "ful": "fuv", "kau": "knc", "kur": "kmr",
    "lav": "lvs", "mlg": "plt", "mon": "khk", "msa": "zsm", "nep": "npi", "nor": "nob", "orm": "gaz",
    "pus": "pbt", "que": "quy", "sqi": "als", "swa": "swh", "uzb": "uzn", "yid": "ydd",
}

# ISO 15924 codes (private-use Qaaa-Qabx excluded): a typo such as `eng_Latm` is an error.
SCRIPTS = frozenset("""
Adlm Afak Aghb Ahom Arab Aran Armi Armn Avst Bali Bamu Bass Batk Beng Bhks Blis Bopo Brah Brai Bugi
Buhd Cakm Cans Cari Cham Cher Chis Chrs Cirt Copt Cpmn Cprt Cyrl Cyrs Deva Diak Dogr Dsrt Dupl Egyd
Egyh Egyp Elba Elym Ethi Gara Geok Geor Glag Gong Gonm Goth Gran Grek Gujr Gukh Guru Hanb Hang Hani
Hano Hans Hant Hatr Hebr Hira Hluw Hmng Hmnp Hrkt Hung Inds Ital Jamo Java Jpan Jurc Kali Kana Kawi
Khar Khmr Khoj Kitl Kits Knda Kore Kpel Krai Kthi Lana Laoo Latf Latg Latn Leke Lepc Limb Lina Linb
Lisu Loma Lyci Lydi Mahj Maka Mand Mani Marc Maya Medf Mend Merc Mero Mlym Modi Mong Moon Mroo Mtei
Mult Mymr Nagm Nand Narb Nbat Newa Nkdb Nkgb Nkoo Nshu Ogam Olck Onao Orkh Orya Osge Osma Ougr Palm
Pauc Pcun Pelm Perm Phag Phli Phlp Phlv Phnx Piqd Plrd Prti Psin Ranj Rjng Rohg Roro Runr Samr Sara
Sarb Saur Sgnw Shaw Shrd Shui Sidd Sidt Sind Sinh Sogd Sogo Sora Soyo Sund Sunu Sylo Syrc Syre Syrj
Syrn Tagb Takr Tale Talu Taml Tang Tavt Tayo Telu Teng Tfng Tglg Thaa Thai Tibt Tirh Tnsa Todr Tols
Toto Tutg Ugar Vaii Visp Vith Wara Wcho Wole Xpeo Xsux Yezi Yiii Zanb Zinh Zmth Zsye Zsym
""".split())

# Codes that name no particular language (ISO 639 special codes and local-use range).
_NOT_A_LANGUAGE = frozenset({"und", "mis", "mul", "zxx"})
_LOCAL_USE = re.compile(r"^q[a-t][a-z]$")

# gettext `@modifier`s that name a script.
_MODIFIER_SCRIPTS = {"latin": "Latn", "cyrillic": "Cyrl", "devanagari": "Deva", "arabic": "Arab"}
# Regions that imply a script for a language whose default would be wrong there.
_REGION_SCRIPTS = {("zho", "TW"): "Hant", ("zho", "HK"): "Hant", ("zho", "MO"): "Hant",
                   ("yue", "CN"): "Hans", ("zho", "CN"): "Hans", ("zho", "SG"): "Hans"}


def _parse_table(text: str, with_639_1: bool) -> list[tuple]:
    rows = []
    for line in text.strip().splitlines():
        parts = line.split(None, 3 if with_639_1 else 2)
        rows.append(tuple(parts))
    return rows


ISO639_1: dict[str, str] = {}
"""ISO 639-1 code → ISO 639-3 code (FLORES-200's choice of individual language)."""
DEFAULT_SCRIPT: dict[str, str] = {}
"""ISO 639-3 code → the script a code without one is assumed to use."""
LANGUAGE_NAMES: dict[str, str] = {}
"""ISO 639-3 code → English name (for messages and near matches)."""

for _a2, _a3, _script, _name in _parse_table(_TABLE_639_1, True):
    ISO639_1[_a2] = _a3
    DEFAULT_SCRIPT.setdefault(_a3, _script)
    LANGUAGE_NAMES.setdefault(_a3, _name)
for _a3, _script, _name in _parse_table(_TABLE_639_3, False):
    DEFAULT_SCRIPT.setdefault(_a3, _script)
    LANGUAGE_NAMES.setdefault(_a3, _name)
LANGUAGE_NAMES["nob"] = "Norwegian Bokmal"  # 'no' and 'nb' both map to nob


def _language_subtag(sub: str, code: str) -> str:
    s = sub.lower()
    if not re.fullmatch(r"[a-z]{2,3}", s):
        raise ValueError(f"unknown language code {code!r}: {sub!r} is not an ISO 639 code")
    if len(s) == 2:
        if s in ALIASES:
            return ALIASES[s]
        if s not in ISO639_1:
            raise ValueError(f"unknown language code {code!r}: no ISO 639-1 code {s!r} in the mapping")
        return ISO639_1[s]
    s = ALIASES.get(s, s)
    if s in _NOT_A_LANGUAGE or _LOCAL_USE.match(s):
        raise ValueError(f"unknown language code {code!r}: {s!r} names no particular language")
    return s


def _check_script(script: str, code: str) -> str:
    s = script[:1].upper() + script[1:].lower()
    if s not in SCRIPTS:
        raise ValueError(f"unknown language code {code!r}: {script!r} is not an ISO 15924 script code")
    return s


def normalize_lang(code: str, script: str | None = None) -> str:
    """Normalise a language code of any supported system to `iso639_3_Script`.

    `script` is used when the code carries none (and must agree when it does).
    Raises ValueError for codes that cannot be mapped.
    """
    if not isinstance(code, str) or not code.strip():
        raise ValueError(f"unknown language code {code!r}: empty")
    raw = code.strip()
    base, _, modifier = raw.partition("@")
    base = base.split(".", 1)[0]  # gettext encoding suffix: de_DE.UTF-8
    parts = [p for p in re.split(r"[-_]", base) if p]
    if not parts:
        raise ValueError(f"unknown language code {code!r}: empty")
    lang = _language_subtag(parts[0], raw)
    code_script = region = None
    for p in parts[1:]:
        if p.lower() == "x":  # BCP-47 private use: the rest is not standard
            break
        if len(p) == 4 and p.isalpha():
            if code_script is None:
                code_script = _check_script(p, raw)
        elif (len(p) == 2 and p.isalpha()) or (len(p) == 3 and p.isdigit()):
            region = region or p.upper()
        # other subtags are variants (de-1901, lld_Latn_gherd): same language and script
    if code_script is None and modifier.lower() in _MODIFIER_SCRIPTS:
        code_script = _MODIFIER_SCRIPTS[modifier.lower()]
    if script is not None and str(script).strip():
        given = _check_script(str(script).strip(), raw)
        if code_script is not None and code_script != given:
            raise ValueError(f"language code {code!r} says script {code_script} but {given} was given")
        code_script = given
    if code_script is None:
        code_script = _REGION_SCRIPTS.get((lang, region)) or DEFAULT_SCRIPT.get(lang)
    if code_script is None:
        raise ValueError(f"language code {code!r} has no script and no default script is known for "
                         f"{lang!r}; give one, e.g. {lang}_Latn")
    if code_script in {"Zzzz", "Zxxx", "Zyyy"}:
        raise ValueError(f"unknown language code {code!r}: script {code_script} names no writing system")
    return f"{lang}_{code_script}"


def try_normalize_lang(code: str, script: str | None = None) -> tuple[str | None, str | None]:
    """(normalised code, None) or (None, error message): never raises."""
    try:
        return normalize_lang(code, script), None
    except (ValueError, TypeError) as e:
        return None, str(e)


def language_name(lang: str) -> str | None:
    """English name of an `iso639_3_Script` (or ISO 639-3) code when the table knows it."""
    return LANGUAGE_NAMES.get(lang.split("_", 1)[0])


def known_languages() -> list[str]:
    """Every `iso639_3_Script` code the tables know by default script, sorted."""
    return sorted(f"{a3}_{s}" for a3, s in DEFAULT_SCRIPT.items())


def near_matches(code: str, candidates=None, n: int = 5) -> list[str]:
    """Codes from `candidates` (default: `known_languages()`) that look like `code`.

    Matches on the code itself, on the same ISO 639-3 prefix, and on English names
    ('german' → deu_Latn).
    """
    cands = sorted(set(candidates if candidates is not None else known_languages()))
    if not code or not cands:
        return []
    q = str(code).strip()
    found: list[str] = []
    try:  # a valid code written differently (de → deu_Latn) or in another script (srp_Latn)
        norm = normalize_lang(q)
        found += [c for c in cands if c == norm]
        found += [c for c in cands if c.split("_")[0] == norm.split("_")[0] and c not in found]
    except ValueError:
        pass
    prefix = q.lower().replace("-", "_").split("_")[0]
    found += [c for c in cands if c.split("_")[0] == prefix and c not in found]
    found += [c for c in difflib.get_close_matches(q, cands, n=n, cutoff=0.6) if c not in found]
    names = {}
    for c in cands:
        name = LANGUAGE_NAMES.get(c.split("_")[0])
        if name:
            names.setdefault(name.lower(), []).append(c)
    for name in difflib.get_close_matches(q.lower(), list(names), n=n, cutoff=0.7):
        found += [c for c in names[name] if c not in found]
    return found[:n]
