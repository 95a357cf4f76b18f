"""The references of exercise 4's new questions (bertbook/questions/q04_bert.py): the best span
against a search of every pair, the aligned labels against the tokenizer's own word ids."""

import random

from transformers import BertTokenizerFast

from bertbook.questions import q04_bert as q04


def test_best_span_is_the_best_valid_pair_of_a_plain_search():
    for seed in range(3):
        for case in q04.span_cases(random.Random(seed)):
            start, end, context, max_len = case.args
            starts, ends = case.expected
            for b in range(start.shape[0]):
                pairs = [
                    (float(start[b, s] + end[b, e]), s, e)
                    for s in range(start.shape[1])
                    for e in range(s, min(s + max_len, start.shape[1]))
                    if context[b, s] and context[b, e]
                ]
                _, s, e = max(pairs)
                assert (int(starts[b]), int(ends[b])) == (s, e), (seed, case.name, b)


def test_aligned_labels_follow_the_tokenizers_word_ids(tmp_path):
    pieces = "paris is in france help berlin ' s zoo em ##bed ##ding ##s jo ##hann".split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *pieces]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"))
    assert len(tokenizer) == len(vocab)
    for words in (
        ["paris", "is", "in", "france"],
        ["embeddings", "help", "johann"],
        ["berlin", "'", "s", "zoos"],
    ):
        labels = list(range(1, len(words) + 1))
        enc = tokenizer(words, is_split_into_words=True, padding="max_length", max_length=12)
        tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
        previous, want = None, []
        for word_id in enc.word_ids():  # the library's word of each token
            want.append(-100 if word_id is None or word_id == previous else labels[word_id])
            previous = word_id
        assert q04._align(tokens, labels) == want, tokens


def test_the_grader_names_the_independent_argmax_and_the_parts_of_the_span(tmp_path):
    """Graded in its own kernel: a best_span that takes the two argmaxes apart loses q5's points
    only, and the feedback names the mistake and says which part of the result differs."""
    import nbformat

    from bertbook.grade import grade_notebook
    from bertbook.maint import ROOT

    nb = nbformat.read(str(ROOT / "solutions" / "04_bert.ipynb"), as_version=4)
    (cell,) = [c for c in nb.cells if c.source.startswith("def best_span(")]
    cell.source = (
        "def best_span(start_logits, end_logits, context, max_len):\n"
        "    start = start_logits.masked_fill(~context, float('-inf'))\n"
        "    end = end_logits.masked_fill(~context, float('-inf'))\n"
        "    return start.argmax(1), end.argmax(1)\n"
    )
    path = tmp_path / "04_bert.ipynb"
    nbformat.write(nb, str(path))
    report = grade_notebook(path, seed=3)
    by_id = {r.question: r for r in report.results}
    q5 = by_id.pop("q5")
    assert all(r.points == r.max_points for r in by_id.values()), report.as_dict()
    assert q5.points < q5.max_points and q5.failed
    for _, why in q5.failed:
        assert why.startswith(("result[0] (the starts)", "result[1] (the ends)")), why
        assert "chosen apart" in why, why
