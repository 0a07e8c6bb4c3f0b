"""Regenerate the name-screening corpus, ``tests/data/screening/corpus.json``.

Each case is one upload written the way a trainer or hub writes it: kohya sd-scripts
(``ss_tag_frequency``, ``ss_dataset_dirs``, ``ss_output_name``, ``modelspec.*``),
ai-toolkit (``name``, ``software``), OneTrainer (``ot_config``) and Civitai or Hugging Face
hub text (``trainedWords``, ``tags``, ``description``, ``card``). A case says which
registered artists it must flag (none for a negative), whether its metadata is malformed,
and the ``rule`` it tests: a positive's expected rule, ``negative:<kind>`` or ``malformed``.
The file is committed: this script documents how it was written and rebuilds it
(deterministic). Run: ``.venv/bin/python scripts/screening_corpus.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "screening" / "corpus.json"

# name, aliases
ARTISTS: list[tuple[str, list[str]]] = [
    ("Mara Quellbrook", ["M. Quellbrook"]),
    ("Greg Rutkowski", []),
    ("Alphonse Mucha", []),
    ("Ilya Kuvshinov", ["kuvshinov_ilya"]),
    ("Oriel Hastmoor", []),
    ("Zoë Ançelin", []),
    ("Anna Müller-Brandt", []),
    ("Georgia O'Keeffe", []),
    ("Wang Ling", ["WLOP"]),
    ("Summer Rain", []),
    ("Rose", []),
    ("Anna Gray", []),
    ("John Baker", []),
    ("Sakimichan", []),
    ("Jérôme Dufresnoy", []),
    ("Yoshitaka Amano", []),
    ("Tomasz Wierzbicki", []),
    ("Ansel Thornquist", []),
    ("Noa Kirschbaum", []),
    ("Ilse Brandvold", []),
]
# Artists whose surname is distinctive (the surname-with-a-cue rule applies), with the
# surname as uploaders write it.
SURNAMES = {
    "Mara Quellbrook": "quellbrook",
    "Greg Rutkowski": "rutkowski",
    "Alphonse Mucha": "mucha",
    "Ilya Kuvshinov": "kuvshinov",
    "Oriel Hastmoor": "hastmoor",
    "Zoë Ançelin": "ancelin",
    "Anna Müller-Brandt": "müller-brandt",
    "Georgia O'Keeffe": "o'keeffe",
    "Jérôme Dufresnoy": "dufresnoy",
    "Yoshitaka Amano": "amano",
    "Tomasz Wierzbicki": "wierzbicki",
    "Ansel Thornquist": "thornquist",
    "Noa Kirschbaum": "kirschbaum",
    "Ilse Brandvold": "brandvold",
}
CUES = [
    "{s} style",
    "style of {s}",
    "in the style of {S}",
    "{s}-esque",
    "{s}esque",
    "by {s}",
    "{s}_style",
    "{S} STYLE",
    "art by {S}",
    "{s}'s style",
    "inspired by {S}",
    "{s} art style",
]
SOUP = [
    "1girl", "solo", "masterpiece", "best quality", "watercolor", "ink wash", "portrait",
    "landscape", "night sky", "city street", "forest", "river", "long hair", "smile",
    "looking at viewer", "simple background", "white background", "outdoors", "flowers",
]  # fmt: skip


def kohya(tags: dict[str, int], folder: str, output: str, **extra: Any) -> dict[str, Any]:
    """A kohya sd-scripts LoRA's metadata: every value a string, nested values as JSON."""
    meta: dict[str, Any] = {
        "ss_sd_model_name": "v1-5-pruned-emaonly.safetensors",
        "ss_network_module": "networks.lora",
        "ss_network_dim": "16",
        "ss_learning_rate": "0.0001",
        "ss_num_epochs": "10",
        "ss_output_name": output,
        "ss_tag_frequency": json.dumps({folder: tags}),
        "ss_dataset_dirs": json.dumps({folder: {"n_repeats": 10, "img_count": 40}}),
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "stable-diffusion-v1/lora",
        "modelspec.title": output,
    }
    meta.update(extra)
    return meta


def aitoolkit(name: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "version": "1.0",
        "software": json.dumps(
            {"name": "ai-toolkit", "repo": "https://github.com/ostris/ai-toolkit"}
        ),
        "training_info": json.dumps({"step": 2000, "epoch": 8}),
        "modelspec.architecture": "flux-1-dev/lora",
    }
    meta.update(extra)
    return meta


def onetrainer(concept: str, path: str, **extra: Any) -> dict[str, Any]:
    config = {
        "model_type": "STABLE_DIFFUSION_XL_10_BASE",
        "concepts": [{"name": concept, "path": path}],
    }
    meta: dict[str, Any] = {"ot_config": json.dumps(config), "ot_revision": "a1b2c3d"}
    meta.update(extra)
    return meta


def soup(n: int, seed: int) -> dict[str, int]:
    picked = [SOUP[(seed * 7 + i * 3) % len(SOUP)] for i in range(n)]
    return {tag: 40 - i for i, tag in enumerate(dict.fromkeys(picked))}


def case(rule: str, expect: list[str], *, metadata: dict[str, Any] | None = None,
         hub_text: list[tuple[str, str]] | None = None, malformed: bool = False,
         raw: str | None = None) -> dict[str, Any]:  # fmt: skip
    item: dict[str, Any] = {"rule": rule, "expect": expect, "malformed": malformed}
    item["metadata"] = metadata or {}
    item["hub_text"] = [{"source": s, "text": t} for s, t in (hub_text or [])]
    if raw is not None:
        item["raw_header"] = raw  # a header JSON text as written, not re-encoded
    return item


def with_tag(tag: str, seed: int, output: str = "my_lora_v1") -> dict[str, Any]:
    tags = soup(6, seed)
    tags[tag] = 12
    return kohya(tags, f"10_{output}", output)


def full_name_cases() -> Iterator[dict[str, Any]]:
    forms: list[Callable[[str], str]] = [
        lambda n: n, lambda n: n.lower(), lambda n: n.replace(" ", "_"),
        lambda n: n.replace(" ", ""), lambda n: n.upper(), lambda n: f"by {n.lower()}",
        lambda n: f"({n.lower()}:1.2)",
    ]  # fmt: skip
    for i, (name, _) in enumerate(ARTISTS):
        if name in ("Rose",):
            continue
        form = forms[i % len(forms)](name)
        yield case("full_name", [name], metadata=with_tag(form, i))
        yield case("full_name", [name], hub_text=[("trainedWords", form)])
        slug = name.lower().replace(" ", "_").replace("'", "")
        yield case("full_name", [name], metadata=aitoolkit(f"{slug}_flux_lora_v2"))
    dodges = [
        ("Mara Quellbrook", "m4ra qu3llbrook"), ("Mara Quellbrook", "mara\u200bquell\u200dbrook"),
        ("Mara Quellbrook", "Маrа Quеllbrооk"), ("Mara Quellbrook", "m.a.r.a quellbrook"),
        ("Greg Rutkowski", "gr3g rutk0wski"), ("Greg Rutkowski", "greg\u00adrutkowski"),
        ("Greg Rutkowski", "GregRutkowski"), ("Greg Rutkowski", "g-r-e-g r-u-t-k-o-w-s-k-i"),
        ("Alphonse Mucha", "alph0nse mucha"), ("Alphonse Mucha", "Αlphonse Muchа"),
        ("Zoë Ançelin", "zoe ancelin"), ("Zoë Ançelin", "ZOË_ANÇELIN"),
        ("Jérôme Dufresnoy", "jerome dufresnoy"), ("Jérôme Dufresnoy", "Jerome_Dufresnoy_v3"),
        ("Anna Müller-Brandt", "anna mueller brandt"), ("Anna Müller-Brandt", "anna muller-brandt"),
        ("Ilya Kuvshinov", "ilya_kuvshinov-000010"), ("Ilya Kuvshinov", "IlyaKuvshinovV2"),
        ("Oriel Hastmoor", "0riel h4stm00r"), ("Oriel Hastmoor", "oriel\u2060hastmoor"),
        ("Yoshitaka Amano", "yoshitaka.amano"), ("Tomasz Wierzbicki", "tomasz wierzbicki"),
        ("Noa Kirschbaum", "n0a k1rschbaum"), ("Ilse Brandvold", "ILSE-BRANDVOLD"),
        ("Georgia O'Keeffe", "georgia okeeffe"), ("Georgia O'Keeffe", "Georgia O’Keeffe"),
        ("Summer Rain", "summer_rain"), ("John Baker", "johnbaker"), ("Anna Gray", "anna gray"),
    ]  # fmt: skip
    for i, (name, text) in enumerate(dodges):
        yield case("full_name", [name], metadata=with_tag(text, 100 + i))
        yield case("full_name", [name], hub_text=[("tags", text)])
    handles = [("Ilya Kuvshinov", "kuvshinov_ilya"), ("Wang Ling", "WLOP"), ("Wang Ling", "wlop"),
               ("Sakimichan", "sakimichan"), ("Mara Quellbrook", "M. Quellbrook"),
               ("Wang Ling", "w l o p")]  # fmt: skip
    for i, (name, text) in enumerate(handles):
        yield case("full_name", [name], metadata=with_tag(text, 200 + i))
        yield case("full_name", [name], hub_text=[("trainedWords", text), ("tags", "anime")])
        yield case("full_name", [name], metadata=onetrainer(text, f"/data/{text.replace(' ', '')}"))


def reversed_cases() -> Iterator[dict[str, Any]]:
    for i, (name, _) in enumerate(ARTISTS):
        if name not in SURNAMES:
            continue
        given, _, surname = name.rpartition(" ")
        yield case("reversed_name", [name], hub_text=[("name", f"{surname}, {given} - style LoRA")])
        yield case(
            "reversed_name", [name], metadata=kohya(soup(5, i), "10_art", f"{surname}_{given}")
        )
        text = f"Trained on public domain scans ({surname}, {given})."
        yield case(
            "reversed_name",
            [name],
            hub_text=[("description", f"Art by {surname}, {given}. {text}")],
        )


def surname_cue_cases() -> Iterator[dict[str, Any]]:
    for i, (name, surname) in enumerate(SURNAMES.items()):
        for j, cue in enumerate(CUES):
            if (i + j) % 2:
                continue
            text = cue.format(s=surname, S=surname.title())
            where = (i + j) // 2 % 6  # (i + j) is even here: every placement in turn
            if where == 0:
                yield case("surname_cue", [name], metadata=with_tag(text, i * 13 + j))
            elif where == 1:
                meta = kohya(soup(5, j), "10_art", "art_lora", **{"modelspec.trigger_phrase": text})
                yield case("surname_cue", [name], metadata=meta)
            elif where == 2:
                yield case("surname_cue", [name], hub_text=[("trainedWords", text)])
            elif where == 3:
                yield case("surname_cue", [name], hub_text=[("tags", text), ("tags", "style")])
            elif where == 4:
                body = f"A LoRA for illustrations {text}. Use weight 0.8."
                yield case("surname_cue", [name], hub_text=[("description", body)])
            else:
                yield case("surname_cue", [name], metadata=aitoolkit(text.replace(" ", "_")))


def common_name_cases() -> Iterator[dict[str, Any]]:
    for i, text in enumerate(
        ["rose style", "by rose", "style of Rose", "rose_style", "ROSE art style"]
    ):
        yield case("common_name_cue", ["Rose"], metadata=with_tag(text, 300 + i))


def negative_cases() -> Iterator[dict[str, Any]]:
    # A distinctive surname alone, no cue: not enough to flag.
    for i, surname in enumerate(SURNAMES.values()):
        yield case("negative:surname_alone", [], metadata=with_tag(surname, 400 + i))
    # Two tags that each hold one word of a name.
    for i, (name, _) in enumerate(ARTISTS):
        if " " not in name:
            continue
        given, _, surname = name.rpartition(" ")
        tags = soup(6, 500 + i)
        tags[given.lower()] = 9
        tags[surname.lower()] = 8
        yield case("negative:split_tags", [], metadata=kohya(tags, "10_art", "art_lora"))
        joined = f"{given.lower()}, {surname.lower()}, 1girl"
        meta = kohya(soup(5, i), "10_art", "art_lora", **{"modelspec.tags": joined})
        yield case("negative:split_tags", [], metadata=meta)
        yield case("negative:split_tags", [], hub_text=[("tags", given), ("tags", surname)])
    # Partial surnames, prefixes and names inside longer words.
    partial = ["brandt style", "keeffe style", "quellbrookian castle", "hastmoorish", "muchacho",
               "rutkowskiego", "kuvshinova style", "amanojaku", "thornquistian", "quell brook-side",
               "kirschbaumblüte", "brandvoldsen style", "dufresnoyer", "wierzbickiego",
               "quellbrooke style", "ancelina style", "sakimichans"]  # fmt: skip
    for i, text in enumerate(partial):
        yield case("negative:partial", [], metadata=with_tag(text, 600 + i))
    # Common words that are also (parts of) registered names.
    soup_words = ["rose", "red rose", "rose petals", "summer", "rain", "summer dress, rain",
                  "gray hair", "gray background", "baker", "john", "anna", "bakery", "graystone",
                  "rainy summer", "summer, rain", "rose garden", "baker street", "john doe",
                  "gray", "by the river", "style", "artist", "brook", "millbrook",
                  "ling"]  # fmt: skip
    for i, text in enumerate(soup_words):
        yield case("negative:common_words", [], metadata=with_tag(text, 700 + i))
        yield case("negative:common_words", [], hub_text=[("tags", text)])
    # Other (unregistered) artists and near-names.
    others = ["tanaka style", "style of monet", "greg hildebrandt", "ilya repin style",
              "by alphonse", "anna style", "rutkowska", "by brandt", "kuvshinova",
              "zoe style", "georgia style", "mara", "oriel window", "by jerome",
              "by yoshitaka"]  # fmt: skip
    for i, text in enumerate(others):
        yield case("negative:near_names", [], metadata=with_tag(text, 800 + i))
    for i in range(20):  # plain uploads
        yield case(
            "negative:plain", [], metadata=kohya(soup(10, 900 + i), f"{i}_cat", f"cat_lora_{i}")
        )


def kohya_datasets(image_dir: str, class_tokens: str, tags: dict[str, int]) -> dict[str, Any]:
    """Newer sd-scripts (dataset config): ``ss_datasets`` with subsets, tag frequency by dir."""
    subset = {"img_count": 40, "num_repeats": 10, "image_dir": image_dir,
              "class_tokens": class_tokens, "caption_extension": ".txt"}  # fmt: skip
    datasets = [{"is_dreambooth": True, "batch_size_per_device": 2, "num_train_images": 40,
                 "subsets": [subset]}]  # fmt: skip
    folder = image_dir.rstrip("/").rpartition("/")[2]
    meta = kohya(tags, folder, "lora", ss_datasets=json.dumps(datasets))
    del meta["ss_dataset_dirs"]
    return meta


def hf_card(title: str, tags: list[str], body: str) -> list[tuple[str, str]]:
    """A Hugging Face model card as the hub gives it: YAML front matter, then markdown."""
    front = "\n".join(["---", "license: creativeml-openrail-m", "tags:",
                        *[f"- {t}" for t in tags], "---"])  # fmt: skip
    return [("name", title), *[("tags", t) for t in tags], ("card", f"{front}\n# {title}\n{body}")]


def as_written_cases() -> Iterator[dict[str, Any]]:
    """Uploads written out by hand the way they appear on the hubs (not from templates)."""
    pos: list[tuple[str, str, dict[str, Any]]] = [
        ("Greg Rutkowski", "surname_cue",
         {"metadata": kohya_datasets("/content/drive/MyDrive/lora/rutk", "rutkowski style",
                                     soup(6, 1))}),
        ("Alphonse Mucha", "full_name",
         {"metadata": kohya_datasets("/workspace/train/10_alphonse mucha", "art nouveau",
                                     soup(6, 2))}),
        ("Alphonse Mucha", "surname_cue",
         {"hub_text": hf_card("mucha-style-sdxl", ["lora", "stable-diffusion-xl", "mucha style"],
                              "Art nouveau posters. Trigger: `mucha style`.")}),
        ("Ilya Kuvshinov", "full_name",
         {"hub_text": [("name", "Kuvshinov Ilya Style [SDXL]"), ("tags", "anime"),
                       ("description", "Portraits in the manner of Ilya Kuvshinov.")]}),
        ("Greg Rutkowski", "full_name",
         {"hub_text": [("prompt", "a castle on a hill, epic, greg rutkowski, trending on "
                                  "artstation, 8k")]}),
        ("Greg Rutkowski", "surname_cue",
         {"hub_text": [("name", "Rutkowski-esque Fantasy"), ("tags", "fantasy")]}),
        ("Mara Quellbrook", "full_name",
         {"hub_text": [("description", "Mara Quellbrook's watercolour style, trained on 40 "
                                       "images.\nRecommended weight 0.7-0.9")]}),
        ("Mara Quellbrook", "surname_cue",
         {"metadata": kohya(soup(5, 3), "20_quellbrook style", "qbrook_v2")}),
        ("Yoshitaka Amano", "full_name",
         {"hub_text": [("trainedWords", "yoshitaka amano, watercolor, ethereal")]}),
        ("Wang Ling", "full_name",
         {"hub_text": [("name", "WLOP Style LoRA"), ("tags", "character")]}),
        ("Wang Ling", "full_name",
         {"metadata": onetrainer("wlop", "/mnt/datasets/wlop_art")}),
        ("Jérôme Dufresnoy", "full_name",
         {"hub_text": [("description", "<b>Style:</b> Jérôme Dufresnoy (oil on canvas).")]}),
        ("Zoë Ançelin", "surname_cue",
         {"hub_text": [("trainedWords", "ançelin style")]}),
        ("Anna Müller-Brandt", "full_name",
         {"metadata": aitoolkit("anna_mueller_brandt_flux", **{
             "modelspec.title": "Anna Müller-Brandt (Flux)"})}),
        ("Noa Kirschbaum", "surname_cue",
         {"metadata": kohya(soup(5, 4), "10_art", "kirschbaum_style_v1",
                            **{"modelspec.trigger_phrase": "kirschbaum style, ink"})}),
        ("Tomasz Wierzbicki", "surname_cue",
         {"hub_text": [("tags", "Wierzbicki Style"), ("tags", "concept art")]}),
        ("Georgia O'Keeffe", "surname_cue",
         {"hub_text": [("name", "O'Keeffe style flowers"), ("tags", "flowers")]}),
        ("Oriel Hastmoor", "full_name",
         {"hub_text": hf_card("oriel-hastmoor-lora", ["lora", "text-to-image"],
                              "A LoRA trained on Oriel Hastmoor's linocuts.")}),
    ]  # fmt: skip
    for name, rule, where in pos:
        yield case(rule, [name], **where)
    neg: list[dict[str, Any]] = [
        {"hub_text": [("description", "Roses are red, the rain falls in summer; soft gray "
                                      "light.")]},
        {"hub_text": [("tags", "rose gold"), ("tags", "jewelry"), ("tags", "style")]},
        {"hub_text": [("name", "Muchas Gracias Meme LoRA")]},
        {"hub_text": [("description", "Baker's dozen of bread styles, by a baker for bakers.")]},
        {"hub_text": hf_card("summer-dress-lora", ["lora", "summer", "rain", "dress"],
                             "Summer dresses in the rain. Trigger: `smrdrs`.")},
        {"metadata": kohya({"rain": 30, "summer": 22, "rose": 12, "gray sky": 10}, "10_weather",
                           "weather_v1")},
        {"metadata": kohya({"anna": 20, "john": 18, "1boy": 40, "1girl": 40}, "10_couple",
                           "couple_v1")},
        {"hub_text": [("prompt", "portrait of a knight, by the sea, style of old masters")]},
        {"hub_text": [("trainedWords", "brandt style")]},  # part of a compound surname
        {"hub_text": [("tags", "greg"), ("tags", "style"), ("tags", "rutkowski")]},
        {"metadata": kohya_datasets("/data/img/10_castles", "castle", soup(6, 5))},
        {"hub_text": [("description", "Not affiliated with any artist. Trained on my own "
                                      "photos of brooks and mills.")]},
        {"metadata": aitoolkit("gray_wolf_flux")},
        {"hub_text": [("name", "Ling Ling the Panda")]},
        {"hub_text": [("tags", "amanojaku"), ("tags", "youkai")]},
        {"metadata": onetrainer("rose_bush", "/data/garden/roses")},
    ]  # fmt: skip
    for where in neg:
        yield case("negative:as_written", [], **where)


def malformed_cases() -> Iterator[dict[str, Any]]:
    base = kohya(soup(5, 1), "10_art", "art_lora")
    values: list[tuple[str, Any]] = [
        ("ss_num_epochs", 10), ("ss_network_dim", 16.0), ("ss_tag_frequency", {"10_art": {"a": 1}}),
        ("modelspec.tags", ["a", "b"]), ("ss_output_name", None), ("ss_v2", False),
    ]  # fmt: skip
    for key, value in values:
        yield case("malformed", [], metadata={**base, key: value}, malformed=True)
    deep = [
        ("ss_tag_frequency", "[" * 10_000 + "]" * 10_000),
        ("ss_tag_frequency", '{"a":' * 50 + "1" + "}" * 50),
        ("ss_datasets", "[" * 40 + "]" * 40),
        ("ss_dataset_dirs", '{"10_x": {"n_repeats": 10}, "10_x": {"n_repeats": 1}}'),
        ("ss_tag_frequency", '{"10_x": {"a": 1}'),
        ("ss_tag_frequency", '{"10_x": {"a": NaN}}'),
        ("ss_tag_frequency", '["10_x"]'),
        ("ss_tag_frequency", '{"10_x": {"\\ud800": 1}}'),
        ("ot_config", '{"concepts": [}'),
        ("ss_training_comment", "[" * 30 + "]" * 30),
    ]
    for key, value in deep:
        yield case("malformed", [], metadata={**base, key: value}, malformed=True)
    # Whole headers no reader agrees on: refused as a whole.
    tensor = '"x":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}'
    duplicate = '{"__metadata__":{"ss_output_name":"a","ss_output_name":"b"},'
    yield case("malformed", [], malformed=True, raw=duplicate + tensor + "}")
    yield case(
        "malformed", [], malformed=True, raw='{"__metadata__":{"a":"\\udc80"},' + tensor + "}"
    )
    # Invalid UTF-8 in the header bytes: a Latin-1 é, and a lone continuation byte.
    for bad in (b"caf\xe9 style", b"\x80\x81 lora"):
        raw = b'{"__metadata__":{"ss_output_name":"' + bad + b'"},' + tensor.encode() + b"}"
        item = case("malformed", [], malformed=True)
        item["raw_header_hex"] = raw.hex()
        yield item


def main() -> None:
    cases = [
        *full_name_cases(), *reversed_cases(), *surname_cue_cases(), *common_name_cases(),
        *negative_cases(), *as_written_cases(), *malformed_cases(),
    ]  # fmt: skip
    for number, item in enumerate(cases, 1):
        item["id"] = number
    corpus = {"artists": [{"name": n, "aliases": a} for n, a in ARTISTS], "cases": cases}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(corpus, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    rules: dict[str, int] = {}
    for item in cases:
        rules[item["rule"]] = rules.get(item["rule"], 0) + 1
    print(f"{len(cases)} cases -> {OUT}: {rules}")


if __name__ == "__main__":
    main()
