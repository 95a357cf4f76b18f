"""Chapter 4: BERT from scratch (loads transformers BertModel weights), MLM masking, a WordPiece
vocabulary from BPE merges, sentence classification with length bucketing, the cached fine-tuned
sentiment teacher, and bootstrap intervals.

Generated from book/04_bert.ipynb by `python -m bertbook.maint sync`: edit the notebook, not this
file."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bertbook.attention import MultiHeadAttention
from bertbook.tokenization import BPE_PRETOKENIZER, bpe_encode, train_bpe


class BertEmbeddings(nn.Module):
    """Token + segment + position embeddings, then LayerNorm and dropout.

    Defined in Chapter 4, section “The encoder layer, from scratch”.
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
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.token(ids) + self.segment(segments) + self.position(positions)  # (B, T, C)
        return self.drop(self.norm(x))


class BertLayer(nn.Module):
    """One encoder layer: self-attention, then a feed-forward network, each followed by add & LayerNorm.

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

    def forward(self, x, mask=None):  # x: (B, T, C); mask: (B, T), True at real tokens
        allowed = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, T): keys only
        h = self.norm1(x + self.drop(self.attn(x, x, allowed)))  # (B, T, C)
        out = self.norm2(h + self.drop(self.ff_out(F.gelu(self.ff_in(h)))))  # exact (erf) GELU
        return out, self.attn.weights  # (B, T, C), (B, nh, T, T)


class BertEncoder(nn.Module):
    """Embeddings and a stack of BertLayers; returns every layer's states and attention weights.

    Defined in Chapter 4, section “The encoder layer, from scratch”.
    """

    def __init__(
        self, vocab_size, d_model=768, n_layers=12, n_heads=12, d_ff=3072, max_len=512, eps=1e-12
    ):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab_size, d_model, max_len, eps=eps)
        self.layers = nn.ModuleList(
            [BertLayer(d_model, n_heads, d_ff, eps) for _ in range(n_layers)]
        )

    def forward(self, ids, mask=None, segments=None):
        states, attentions = [self.embeddings(ids, segments)], []
        for layer in self.layers:
            x, w = layer(states[-1], mask)
            states.append(x)
            attentions.append(w)
        return states, attentions  # n_layers + 1 tensors (B, T, C); n_layers (B, nh, T, T)


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


def bert_encoder_from(model) -> BertEncoder:
    """Our BertEncoder with the weights of a transformers BertModel (any size).

    Defined in Chapter 4, section “The encoder layer, from scratch”.
    """
    c = model.config
    ours = BertEncoder(
        c.vocab_size,
        c.hidden_size,
        c.num_hidden_layers,
        c.num_attention_heads,
        c.intermediate_size,
        c.max_position_embeddings,
        c.layer_norm_eps,
    )
    e, theirs = ours.embeddings, model.embeddings
    with torch.no_grad():
        e.token.weight.copy_(theirs.word_embeddings.weight)
        e.segment.weight.copy_(theirs.token_type_embeddings.weight)
        e.position.weight.copy_(theirs.position_embeddings.weight)
        e.norm.weight.copy_(theirs.LayerNorm.weight)
        e.norm.bias.copy_(theirs.LayerNorm.bias)
    for mine, lib in zip(ours.layers, model.encoder.layer):
        copy_bert_layer(mine, lib)
    return ours.eval()


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
    p = torch.full(ids.shape, mlm_probability).masked_fill(special, 0.0)
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


def encode_sentences(tokenizer, sentences, max_length=64):
    """Token ids of each sentence, with [CLS] and [SEP], cut at max_length.

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    return [tokenizer(s, truncation=True, max_length=max_length)["input_ids"] for s in sentences]


def length_batches(encodings, batch_size, generator=None):
    """Lists of indices, each a batch of similar lengths. With a generator: shuffled, sorted
    only within chunks of 50 batches, then the batches shuffled (random, yet little padding).

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    if generator is None:
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i]))
    else:
        order, chunk = torch.randperm(len(encodings), generator=generator).tolist(), 50 * batch_size
        order = [
            i
            for c in range(0, len(order), chunk)
            for i in sorted(order[c : c + chunk], key=lambda i: len(encodings[i]))
        ]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if generator is not None:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return batches


def pad(encodings, batch, pad_id=0, device="cpu"):
    """(ids, mask), both (len(batch), longest), for the sentences at the indices in batch.

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    longest = max(len(encodings[i]) for i in batch)
    ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
    for row, i in enumerate(batch):
        ids[row, : len(encodings[i])] = torch.tensor(encodings[i])
    mask = (
        torch.arange(longest)[None, :] < torch.tensor([len(encodings[i]) for i in batch])[:, None]
    )
    return ids.to(device), mask.long().to(device)


def mean_pool(hidden, mask):
    """Mean of the token vectors, padding excluded. hidden: (B, T, C), mask: (B, T) -> (B, C).

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


@torch.no_grad()
def sentence_vectors(encoder, encodings, batch_size=128):
    """(N, C) mean-pooled outputs of a frozen encoder, in the order of encodings.

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    encoder.eval()
    device = next(encoder.parameters()).device
    out = torch.zeros(len(encodings), encoder.config.hidden_size)
    for batch in length_batches(encodings, batch_size):
        ids, mask = pad(encodings, batch, device=device)
        out[batch] = mean_pool(
            encoder(input_ids=ids, attention_mask=mask).last_hidden_state, mask
        ).cpu()
    return out


class SentimentClassifier(nn.Module):
    """A pretrained encoder, mean pooling and a linear head: logits (B, n_classes).

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """

    def __init__(self, encoder, n_classes=2, dropout=0.1):
        super().__init__()
        self.encoder = encoder
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, n_classes)

    def forward(self, ids, mask):
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, T, C)
        return self.head(self.drop(mean_pool(hidden, mask)))  # (B, n_classes)


def warmup_linear(steps, warmup=0.1):
    """Learning-rate multiplier: linear warm-up over the first warmup share, then linear decay to 0.

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    return lambda s: min((s + 1) / (warmup * steps), (steps - s) / ((1 - warmup) * steps))


def train_classifier(model, encodings, labels, steps, lr, batch_size=32, seed=0, loss_fn=None):
    """Fine-tune for a number of steps; returns the training losses. loss_fn(logits, batch)
    defaults to cross-entropy with the labels (Chapter 5 passes a distillation loss).

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    device = next(model.parameters()).device
    labels = torch.as_tensor(labels)
    loss_fn = loss_fn or (lambda logits, batch: F.cross_entropy(logits, labels[batch].to(device)))
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_linear(steps))
    losses = []
    model.train()
    while len(losses) < steps:  # epochs, until the step budget ends
        for batch in length_batches(encodings, batch_size, g):
            loss = loss_fn(model(*pad(encodings, batch, device=device)), batch)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return losses


@torch.no_grad()
def predict_logits(model, encodings, batch_size=128):
    """(N, n_classes) logits in the order of encodings.

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    model.eval()
    device = next(model.parameters()).device
    out = None
    for batch in length_batches(encodings, batch_size):
        logits = model(*pad(encodings, batch, device=device)).cpu()
        out = torch.zeros(len(encodings), logits.shape[1]) if out is None else out
        out[batch] = logits
    return out


TEACHER_RECIPE = {"steps": 180, "lr": 1.5e-4, "batch_size": 32, "max_length": 64, "seed": 0}


def fine_tune_sentiment(checkpoint, recipe=TEACHER_RECIPE, device="cpu"):
    """The pretrained checkpoint fine-tuned on the movie-review training split with the recipe.
    Returns (model, tokenizer, losses).

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    from transformers import AutoModel, AutoTokenizer

    from bertbook import assets

    tok = AutoTokenizer.from_pretrained(checkpoint)
    sentences, labels, _ = assets.load_movie_reviews("train")
    encodings = encode_sentences(tok, sentences, recipe["max_length"])
    torch.manual_seed(recipe["seed"])  # the head's initial weights and dropout
    model = SentimentClassifier(AutoModel.from_pretrained(checkpoint)).to(device)
    losses = train_classifier(
        model,
        encodings,
        labels,
        recipe["steps"],
        recipe["lr"],
        recipe["batch_size"],
        recipe["seed"],
    )
    return model.eval(), tok, losses


def teacher_path(checkpoint, recipe=TEACHER_RECIPE):
    """Cache file of the fine-tuned model, keyed by this module's code, the recipe, the weights
    (their sha256 when checkpoint is a local folder) and the library versions.

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    import transformers

    from bertbook import assets
    from bertbook import bert as this_module

    weights = Path(checkpoint) / "model.safetensors"
    origin = assets.sha256_of(weights) if weights.exists() else checkpoint
    key = hashlib.sha256(
        Path(this_module.__file__).read_bytes()
        + json.dumps(
            [origin, recipe, torch.__version__, transformers.__version__], sort_keys=True
        ).encode()
    ).hexdigest()[:16]
    return assets.cache_dir() / "artifacts" / f"sentiment-{key}.pt"


def save_teacher(model, checkpoint, recipe=TEACHER_RECIPE, path=None):
    """Write the model's weights to its cache file (path: teacher_path's result, if already known).

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    path = path or teacher_path(checkpoint, recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)  # a reader never sees half a file
    return path


def load_or_train_teacher(checkpoint, recipe=TEACHER_RECIPE, device="cpu"):
    """(model, tokenizer, was_cached): Chapter 4's fine-tuned classifier, from the cache when
    present, trained (and cached) otherwise.

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    from transformers import AutoModel, AutoTokenizer

    path = teacher_path(checkpoint, recipe)
    if path.exists():
        model = SentimentClassifier(AutoModel.from_pretrained(checkpoint))
        model.load_state_dict(torch.load(path, map_location="cpu"))
        return model.to(device).eval(), AutoTokenizer.from_pretrained(checkpoint), True
    model, tok, _ = fine_tune_sentiment(checkpoint, recipe, device)
    save_teacher(
        model, checkpoint, recipe, path
    )  # the key is computed once (it hashes the weights)
    return model, tok, False


def bootstrap_interval(correct, n_resamples=10_000, seed=0, level=0.95):
    """(mean, low, high): accuracy and its percentile bootstrap interval. correct: (N,) booleans,
    or (N,) differences of two methods' correctness on the same examples (a paired bootstrap).

    Defined in Chapter 4, section “A cannon at sparrows? Fine-tuning against cheap baselines”.
    """
    correct = np.asarray(correct, dtype=float)
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, len(correct), (n_resamples, len(correct)))].mean(1)
    tail = (1 - level) / 2
    return correct.mean(), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))
