"""The graded questions of each exercise notebook, keyed by the notebook's file name."""

from . import (
    q00_intro,
    q01_seq2seq_attention,
    q02_transformer,
    q03_tokenizers,
    q04_bert,
    q05_distilbert,
    q06_gpt2,
)

REGISTRY = {
    "00_intro": q00_intro.questions,
    "01_seq2seq_attention": q01_seq2seq_attention.questions,
    "02_transformer": q02_transformer.questions,
    "03_tokenizers": q03_tokenizers.questions,
    "04_bert": q04_bert.questions,
    "05_distilbert": q05_distilbert.questions,
    "06_gpt2": q06_gpt2.questions,
}
