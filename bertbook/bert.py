"""Chapter 4: BERT from scratch (embeddings, post-norm encoder layers, the encoder,
BertEncoder.from_hf loading a transformers BERT), MLM masking and the masked-word head, a WordPiece
vocabulary from BPE merges, mean pooling, the sentiment classifier, its fine-tuning recipe and the
cache that keeps it for Chapter 5, and the span and tagging heads of the paper's Figure 4.
Batching, training loops, cache keys and statistics are in bertbook.training.

Generated from book/04_bert.ipynb by `python -m bertbook.maint sync`: edit the notebook, not this
file."""

import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint as recompute_in_backward

from bertbook.attention import MultiHeadAttention
from bertbook.tokenization import BPE_PRETOKENIZER, bpe_encode, train_bpe
from bertbook.training import (
    artifact_path,
    encode_sentences,
    save_state,
    train_classifier,
    weights_id,
)


class BertEmbeddings(nn.Module):
    """BERT's input: token + segment + position embeddings, then LayerNorm and dropout.

    ids and segments (B, T) -> (B, T, C). Positions are learned, 0 to max_len - 1.

    Defined in Chapter 4, section “Input: three embeddings added together”.
    """

    def __init__(self, vocab_size, d_model, max_len=512, n_segments=2, eps=1e-12, dropout=0.1):
        super().__init__()
        self.token = nn.Embedding(vocab_size, d_model)
        self.segment = nn.Embedding(n_segments, d_model)
        self.position = nn.Embedding(max_len, d_model)
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids, segments=None):  # ids: (B, T)
        if segments is None:
            segments = torch.zeros_like(ids)
        positions = torch.arange(ids.shape[1], device=ids.device)  # (T,)
        x = self.token(ids) + self.segment(segments) + self.position(positions)  # (B, T, C)
        return self.drop(self.norm(x))


class BertLayer(nn.Module):
    """One encoder layer, post-norm: self-attention, then a feed-forward network, each added to
    its input and followed by LayerNorm.

    x (B, T, C) and mask (B, T), nonzero at real tokens -> (B, T, C), and the attention weights
    (B, nh, T, T).

    Defined in Chapter 4, section “The encoder layer, from scratch”.
    """

    def __init__(self, d_model=768, n_heads=12, d_ff=3072, eps=1e-12, dropout=0.1):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, n_heads)  # Chapter 2's, unchanged
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.ff_in = nn.Linear(d_model, d_ff)
        self.ff_out = nn.Linear(d_ff, d_model)
        self.norm2 = nn.LayerNorm(d_model, eps=eps)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask=None):
        allowed = None if mask is None else mask.bool()[:, None, None, :]  # (B, 1, 1, T): keys
        h = self.norm1(x + self.drop(self.attn(x, x, allowed)))  # (B, T, C)
        out = self.norm2(h + self.drop(self.ff_out(F.gelu(self.ff_in(h)))))  # exact (erf) GELU
        return out, self.attn.weights  # (B, T, C), (B, nh, T, T)


class BertEncoder(nn.Module):
    """BERT's encoder: BertEmbeddings, then n_layers BertLayers.

    ids (B, T) -> every layer's states, n_layers + 1 tensors (B, T, C) (the embeddings first),
    and every layer's attention weights, n_layers tensors (B, nh, T, T).

    Defined in Chapter 4, section “The encoder layer, from scratch”.
    """

    def __init__(self, vocab_size, d_model=768, n_layers=12, n_heads=12, d_ff=3072,
                 max_len=512, eps=1e-12, dropout=0.1):  # fmt: skip
        super().__init__()
        self.d_model = d_model
        self.embeddings = BertEmbeddings(vocab_size, d_model, max_len, eps=eps, dropout=dropout)
        layers = [BertLayer(d_model, n_heads, d_ff, eps, dropout) for _ in range(n_layers)]
        self.layers = nn.ModuleList(layers)
        self.recompute_above = None  # n: a batch of more than n tokens recomputes (see fine-tuning)

    def forward(self, ids, mask=None, segments=None):
        recompute = self.recompute_above is not None and ids.numel() > self.recompute_above
        states, attentions = [self.embeddings(ids, segments)], []
        for layer in self.layers:
            if recompute and torch.is_grad_enabled():
                x, weights = recompute_in_backward(layer, states[-1], mask, use_reentrant=False)
            else:
                x, weights = layer(states[-1], mask)
            states.append(x)
            attentions.append(weights)
        return states, attentions

    @classmethod
    def from_hf(cls, model):
        """Our encoder with the weights of a transformers BertModel, or of the checkpoint that
        model names (a folder, or a hub name such as "bert-base-uncased"); in eval mode."""
        if isinstance(model, (str, os.PathLike)):
            from transformers import BertModel

            model = BertModel.from_pretrained(model)
        c = model.config
        ours = cls(c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads,
                   c.intermediate_size, c.max_position_embeddings, c.layer_norm_eps,
                   c.hidden_dropout_prob)  # fmt: skip
        copy_bert_weights(ours, model)
        return ours.eval()


def copy_bert_layer(ours: BertLayer, theirs) -> None:
    """Copy the weights of a transformers BertLayer into our BertLayer.

    Defined in Chapter 4, section “The encoder layer, from scratch”.
    """
    pairs = [
        (ours.attn.q_proj, theirs.attention.self.query),
        (ours.attn.k_proj, theirs.attention.self.key),
        (ours.attn.v_proj, theirs.attention.self.value),
        (ours.attn.out_proj, theirs.attention.output.dense),
        (ours.norm1, theirs.attention.output.LayerNorm),
        (ours.ff_in, theirs.intermediate.dense),
        (ours.ff_out, theirs.output.dense),
        (ours.norm2, theirs.output.LayerNorm),
    ]
    with torch.no_grad():
        for mine, lib in pairs:
            mine.weight.copy_(lib.weight)
            mine.bias.copy_(lib.bias)


def copy_bert_weights(ours: BertEncoder, theirs) -> None:
    """Copy a transformers BertModel's embeddings and layers into our BertEncoder (same sizes).

    Defined in Chapter 4, section “The encoder layer, from scratch”.
    """
    e, lib = ours.embeddings, theirs.embeddings
    with torch.no_grad():
        e.token.weight.copy_(lib.word_embeddings.weight)
        e.segment.weight.copy_(lib.token_type_embeddings.weight)
        e.position.weight.copy_(lib.position_embeddings.weight)
        e.norm.weight.copy_(lib.LayerNorm.weight)
        e.norm.bias.copy_(lib.LayerNorm.bias)
    for mine, layer in zip(ours.layers, theirs.encoder.layer, strict=True):
        copy_bert_layer(mine, layer)


def mask_tokens(
    ids,
    special,
    vocab_size,
    mask_id,
    generator,
    mlm_probability=0.15,
    mask_replace_prob=0.8,
    random_replace_prob=0.1,
):
    """BERT's masking. ids: (B, T) token ids; special: (B, T) bool, True where masking is not allowed.

    Returns (inputs, labels): inputs with the chosen positions replaced ([MASK] 80%, a random
    token 10%, unchanged 10%), labels equal to the original token there and -100 elsewhere.

    Defined in Chapter 4, section “Pre-training: masked language modelling”.
    """
    inputs, labels = ids.clone(), ids.clone()
    p = torch.full(ids.shape, mlm_probability).masked_fill(special, 0.0)  # (B, T)
    chosen = torch.bernoulli(p, generator=generator).bool()  # (B, T)
    labels[~chosen] = -100  # the loss only looks at the chosen positions
    to_mask = (
        torch.bernoulli(torch.full(ids.shape, mask_replace_prob), generator=generator).bool()
        & chosen
    )
    inputs[to_mask] = mask_id
    if mask_replace_prob == 1 or random_replace_prob == 0:
        return inputs, labels
    # Of the chosen positions not masked, the share that gets a random token:
    share = random_replace_prob / (1 - mask_replace_prob)
    to_random = (
        torch.bernoulli(torch.full(ids.shape, share), generator=generator).bool()
        & chosen
        & ~to_mask
    )
    random_tokens = torch.randint(vocab_size, ids.shape, dtype=torch.long, generator=generator)
    inputs[to_random] = random_tokens[to_random]
    return inputs, labels


SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece_vocab(text, n_merges):
    """A WordPiece vocabulary from BPE merges learned on text: word-initial pieces as they are,
    word-internal pieces with '##'. Deterministic (the same text gives the same list).

    Defined in Chapter 4, section “A tiny BERT, pre-trained here on Shakespeare”.
    """
    alphabet, merges = train_bpe(text, n_merges)
    vocab = SPECIAL_TOKENS + alphabet + ["##" + c for c in alphabet]
    seen = set(vocab)
    for word in sorted(set(BPE_PRETOKENIZER.findall(text))):
        for i, piece in enumerate(bpe_encode(word, merges)):
            token = piece if i == 0 else "##" + piece
            if token not in seen:
                seen.add(token)
                vocab.append(token)
    return vocab


class MLMHead(nn.Module):
    """BERT's masked-word head (transformers' cls.predictions): dense, GELU, LayerNorm, then a
    decoder onto the vocabulary whose weight is the token-embedding table (tied).

    x (B, T, C) -> logits (B, T, V).

    Defined in Chapter 4, section “A tiny BERT, pre-trained here on Shakespeare”.
    """

    def __init__(self, token_embedding: nn.Embedding, eps=1e-12):
        super().__init__()
        V, C = token_embedding.weight.shape
        self.dense = nn.Linear(C, C)
        self.norm = nn.LayerNorm(C, eps=eps)
        self.decoder = nn.Linear(C, V)
        self.decoder.weight = token_embedding.weight  # tied: one (V, C) matrix, two uses

    def forward(self, x):
        return self.decoder(self.norm(F.gelu(self.dense(x))))  # (B, T, V)


def init_bert_weights(module, std=0.02):
    """BERT's initialisation, for model.apply: weights of linear layers and embeddings drawn
    from N(0, std^2), biases 0, LayerNorm scale 1 and shift 0.

    Defined in Chapter 4, section “A tiny BERT, pre-trained here on Shakespeare”.
    """
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class BertForMLM(nn.Module):
    """A BertEncoder with the masked-word head: ids (B, T), mask (B, T) -> logits (B, T, V).

    Defined in Chapter 4, section “A tiny BERT, pre-trained here on Shakespeare”.
    """

    def __init__(self, encoder: BertEncoder):
        super().__init__()
        self.encoder = encoder
        self.head = MLMHead(encoder.embeddings.token, eps=encoder.embeddings.norm.eps)

    def forward(self, ids, mask=None):
        states, _ = self.encoder(ids, mask)
        return self.head(states[-1])  # (B, T, V)

    @classmethod
    def from_hf(cls, model):
        """Our model with the weights of a transformers BertForMaskedLM (encoder and head)."""
        ours = cls(BertEncoder.from_hf(model.bert))
        lib = model.cls.predictions
        with torch.no_grad():
            for mine, theirs in [(ours.head.dense, lib.transform.dense),
                                 (ours.head.norm, lib.transform.LayerNorm)]:  # fmt: skip
                mine.weight.copy_(theirs.weight)
                mine.bias.copy_(theirs.bias)
            ours.head.decoder.bias.copy_(lib.bias)
        return ours.eval()


def mean_pool(hidden, mask):
    """Mean of the token vectors, padding excluded. hidden: (B, T, C), mask: (B, T) -> (B, C).

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


class MeanPooler(nn.Module):
    """A BertEncoder read as one vector per sentence: ids, mask (B, T) -> (B, C), the mean of the
    last layer's token vectors over the real tokens.

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """

    def __init__(self, encoder: BertEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, ids, mask):
        states, _ = self.encoder(ids, mask)
        return mean_pool(states[-1], mask)  # (B, C)


class SentimentClassifier(nn.Module):
    """A BertEncoder, mean pooling, dropout and a linear head: ids, mask (B, T) -> logits
    (B, n_classes).

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """

    def __init__(self, encoder: BertEncoder, n_classes=2, dropout=0.1):
        super().__init__()
        self.encoder = encoder
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.d_model, n_classes)

    def forward(self, ids, mask):
        states, _ = self.encoder(ids, mask)
        return self.head(self.drop(mean_pool(states[-1], mask)))  # (B, n_classes)


TEACHER_RECIPE = {"steps": 100, "lr": 1.5e-4, "batch_size": 32, "max_length": 64, "seed": 0}
# Memory, not results: a batch of more tokens (B * T) than this keeps only its layers' inputs
# for the backward pass and recomputes the rest (the longest batch holds 32 * 64 = 2,048).
RECOMPUTE_ABOVE = 768


def fine_tune_sentiment(checkpoint, recipe=TEACHER_RECIPE, device="cpu"):
    """Our encoder with the checkpoint's weights, mean pooling and a linear head, fine-tuned on
    the movie-review training split with the recipe. Returns (model, tokenizer, losses).

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    from transformers import AutoTokenizer

    from bertbook import assets

    tok = AutoTokenizer.from_pretrained(checkpoint)
    sentences, labels, _ = assets.load_movie_reviews("train")
    encodings = encode_sentences(tok, sentences, recipe["max_length"])
    torch.manual_seed(recipe["seed"])  # the head's initial weights and the dropout draws
    model = SentimentClassifier(BertEncoder.from_hf(checkpoint)).to(device)
    # The word-embedding table (half the weights) stays as pretrained: no gradients or AdamW
    # state for it, and a rare word's row is not moved by the few sentences that contain it.
    model.encoder.embeddings.token.weight.requires_grad_(False)
    steps, lr, batch_size, seed = (recipe[k] for k in ("steps", "lr", "batch_size", "seed"))
    model.encoder.recompute_above = RECOMPUTE_ABOVE  # the same numbers, less memory
    losses = train_classifier(model, encodings, labels, steps, lr, batch_size, seed)
    model.encoder.recompute_above = None
    return model.eval(), tok, losses


def teacher_code() -> list:
    """Everything whose code decides the fine-tuned classifier: Chapter 2's attention, this
    chapter's encoder, classifier and recipe, and the batching and training loop. Taken from the
    saved modules, so that this chapter and Chapter 5 compute the same key.

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    from bertbook import attention, bert, training

    return [
        attention.scaled_dot_product_attention, attention.split_heads, attention.merge_heads,
        attention.MultiHeadAttention, bert.BertEmbeddings, bert.BertLayer, bert.BertEncoder,
        bert.copy_bert_layer, bert.copy_bert_weights, bert.mean_pool, bert.SentimentClassifier,
        bert.fine_tune_sentiment, training.encode_sentences, training.length_batches,
        training.pad, training.warmup_linear, training.training_batches,
        training.train_classifier,
    ]  # fmt: skip


def teacher_path(checkpoint, recipe=TEACHER_RECIPE, weights=None):
    """The cache file of the classifier fine-tuned from checkpoint with recipe (weights:
    weights_id(checkpoint), if already known: hashing 90 MB takes a moment).

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    weights = weights_id(checkpoint) if weights is None else weights
    return artifact_path("sentiment", teacher_code(), recipe, weights)


def save_teacher(model, checkpoint, recipe=TEACHER_RECIPE, path=None):
    """Cache a fine-tuned classifier (path: teacher_path's result, if already known).

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    return save_state(model, path or teacher_path(checkpoint, recipe))


def load_or_train_teacher(checkpoint, recipe=TEACHER_RECIPE, device="cpu"):
    """(model, tokenizer, was_cached): the fine-tuned classifier, from the cache when it is
    there, else trained with fine_tune_sentiment and cached. Chapter 5 starts here.

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    from transformers import AutoTokenizer

    path = teacher_path(checkpoint, recipe)  # hashes the weights: computed once
    if path.exists():
        model = SentimentClassifier(BertEncoder.from_hf(checkpoint))
        model.load_state_dict(torch.load(path, map_location="cpu"))
        return model.to(device).eval(), AutoTokenizer.from_pretrained(checkpoint), True
    model, tok, _ = fine_tune_sentiment(checkpoint, recipe, device)
    save_teacher(model, checkpoint, recipe, path)
    return model, tok, False


class SpanHead(nn.Module):
    """Question answering's head (the BERT paper's Figure 4c): a linear map C -> 2 at every
    token, the logits of the answer starting and ending there.

    hidden (B, T, C) -> start, end, each (B, T).

    Defined in Chapter 4, section “Other tasks, other heads”.
    """

    def __init__(self, d_model):
        super().__init__()
        self.proj = nn.Linear(d_model, 2)

    def forward(self, hidden):
        start, end = self.proj(hidden).unbind(-1)  # (B, T, 2) -> (B, T), (B, T)
        return start, end


class TaggingHead(nn.Module):
    """Tagging's head (Figure 4d): dropout, then a linear map C -> n_tags at every token.

    hidden (B, T, C) -> logits (B, T, n_tags).

    Defined in Chapter 4, section “Other tasks, other heads”.
    """

    def __init__(self, d_model, n_tags, dropout=0.1):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(d_model, n_tags)

    def forward(self, hidden):
        return self.proj(self.drop(hidden))  # (B, T, n_tags)


class BertForSpans(nn.Module):
    """A BertEncoder with a SpanHead: ids, mask, segments (B, T) -> start, end logits (B, T).

    Defined in Chapter 4, section “Other tasks, other heads”.
    """

    def __init__(self, encoder: BertEncoder):
        super().__init__()
        self.encoder = encoder
        self.head = SpanHead(encoder.d_model)

    def forward(self, ids, mask=None, segments=None):
        states, _ = self.encoder(ids, mask, segments)
        return self.head(states[-1])  # (B, T), (B, T)

    @classmethod
    def from_hf(cls, model):
        """Ours with the weights of a transformers BertForQuestionAnswering."""
        ours = cls(BertEncoder.from_hf(model.bert))
        copy_linear(ours.head.proj, model.qa_outputs)
        return ours.eval()


class BertForTagging(nn.Module):
    """A BertEncoder with a TaggingHead: ids, mask, segments (B, T) -> logits (B, T, n_tags).

    Defined in Chapter 4, section “Other tasks, other heads”.
    """

    def __init__(self, encoder: BertEncoder, n_tags, dropout=0.1):
        super().__init__()
        self.encoder = encoder
        self.head = TaggingHead(encoder.d_model, n_tags, dropout)

    def forward(self, ids, mask=None, segments=None):
        states, _ = self.encoder(ids, mask, segments)
        return self.head(states[-1])  # (B, T, n_tags)

    @classmethod
    def from_hf(cls, model):
        """Ours with the weights of a transformers BertForTokenClassification."""
        ours = cls(BertEncoder.from_hf(model.bert), model.num_labels)
        copy_linear(ours.head.proj, model.classifier)
        return ours.eval()


def copy_linear(mine: nn.Linear, theirs: nn.Linear) -> None:
    """Copy one linear layer's weight and bias into another of the same shape.

    Defined in Chapter 4, section “Other tasks, other heads”.
    """
    with torch.no_grad():
        mine.weight.copy_(theirs.weight)
        mine.bias.copy_(theirs.bias)


def argmax_span(start, end):
    """The answer span by independent argmax: start, end logits (B, T) -> (B, 2) positions
    (first, last token). Nothing here stops last < first, or a span of the whole passage.

    Defined in Chapter 4, section “Other tasks, other heads”.
    """
    return torch.stack([start.argmax(-1), end.argmax(-1)], -1)  # (B, 2)
