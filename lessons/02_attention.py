# %% [markdown]
# # Lesson 02 · Queries, keys and values
#
# **Goal:** write scaled dot-product attention with padding and causal masks, and see why each part of the formula is there.
#
# **Time:** about 80 minutes.
#
# In lesson 01 a single query word looked at a handful of key words, scored each by a dot
# product and turned the scores into weights with a softmax. This lesson turns that idea
# into the exact computation inside every transformer:
#
# 1. three learned maps give every token a **query**, a **key** and a **value** (10 min);
# 2. attention for a whole sequence at once, as two matrix products (10 min);
# 3. why the scores are divided by √d (10 min);
# 4. masks, and why masked scores become −∞ rather than 0 (10 min);
# 5. exercises 2.1–2.3: attention and its two masks (25 min);
# 6. attention over real words (10 min);
# 7. what attention costs as sentences grow (5 min).
#
# Exercises have a one-line check cell underneath. Run it: it prints one line when your
# code is right and one sentence saying what to fix when it is not.
#
# **What carries over.** Your `scaled_dot_product_attention` (exercise 2.1) is kept once
# its check passes: lesson 03's heads run on it, and through them the models that lessons
# 06 to 08 train and probe. A part you skip is replaced by the course's reference, and
# `parts.show()` says, at any time, which parts are yours.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import attention as reference  # the course's own solutions, used by demos
from course_utils import get_device, set_seed
from course_utils.exercises import check
from course_utils.plots import attention_heatmap, cost_curves, saturation_curves
from course_utils.wordvectors import news_word_vectors, sentence_vectors

device = get_device()
set_seed(0)

# %% [markdown]
# ## 1. Three roles for every token (10 min)
#
# Attention lets each token gather information from the other tokens of its sequence.
# To do that, every token plays three roles, each given by its own learned linear map of
# the token's vector $x$:
#
# - its **query** $q = x W_Q + b_Q$ says what the token is looking for;
# - its **key** $k = x W_K + b_K$ says what the token offers to those looking;
# - its **value** $v = x W_V + b_V$ is what it hands over when someone attends to it.
#
# Each map is a weight matrix $W$ plus a bias vector $b$, as in every `nn.Linear` (the
# original paper leaves the biases out of its formulas; most implementations keep them).
#
# Why three maps and not the raw vectors? With raw vectors, the score of token $i$ for
# token $j$ would be $x_i \cdot x_j$: symmetric, and usually largest for a token and itself
# (only a longer vector pointing in a similar direction beats
# $x_i \cdot x_i = \lVert x_i \rVert^2$). Separate query and key maps let "a verb
# looking for its subject" differ from "a subject looking for its verb"; a separate value
# map lets what a token is *found by* differ from what it *says*.
#
# In code, the three maps are three `nn.Linear` layers applied to a batch-first tensor
# `(batch, seq, d_model)`. The linear layer acts on the last axis, so every token is
# projected by the same weights.

# %%
d_model = 8
tokens = torch.randn(2, 5, d_model)  # (batch, seq, d_model): 2 sentences of 5 tokens

q_proj = nn.Linear(d_model, d_model)
k_proj = nn.Linear(d_model, d_model)
v_proj = nn.Linear(d_model, d_model)
query, key, value = q_proj(tokens), k_proj(tokens), v_proj(tokens)
print(f"tokens {tuple(tokens.shape)} → query, key and value {tuple(query.shape)} each")

# %% [markdown]
# ## 2. Attention as two matrix products (10 min)
#
# Stack the queries of a sequence as the rows of $Q$ (shape `(seq_q, d_k)`), the keys as the
# rows of $K$ (`(seq_k, d_k)`) and the values as the rows of $V$ (`(seq_k, d_v)`). Then
#
# $$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V .$$
#
# | step | expression | shape |
# |---|---|---|
# | scores: every query against every key | $S = Q K^\top / \sqrt{d_k}$ | `(seq_q, seq_k)` |
# | weights: softmax along each **row** | $A = \operatorname{softmax}(S)$ | `(seq_q, seq_k)` |
# | output: a weighted average of the values | $A V$ | `(seq_q, d_v)` |
#
# The softmax runs over the **key** axis (the last one): each query distributes one unit
# of attention over the keys, so every row of $A$ sums to 1. With a batch, and later with
# several heads, the same formula applies to the last two axes and everything in front of
# them just comes along: `(batch, seq_q, d_k) @ (batch, d_k, seq_k)` is a batch of matrix
# products. That is why the transpose must swap the **last two** axes,
# `key.transpose(-2, -1)`, rather than `key.T`, which would reverse all of them (and
# which PyTorch deprecates for tensors that are not 2-D).
#
# Queries and keys must share their size $d_k$ (they meet in a dot product); the values
# may have another size $d_v$, which is then the size of the output. ($d_k$ and $d_v$
# are the paper's names; from lesson 03 on, where each head has its own small queries,
# keys and values, both are `d_head`.)

# %% [markdown]
# ## 3. Why divide by √d? (10 min)
#
# If the entries of $q$ and $k$ are independent with mean 0 and variance 1, their dot
# product is a sum of $d$ such products, so its variance is $d$ and its typical size
# $\sqrt d$. With $d = 512$, scores spread over ±20 or more, and a softmax of such scores
# puts nearly all the weight on one key: the output ignores every other token, and the
# gradient through the softmax is almost zero, so the model stops learning. Dividing by
# $\sqrt d$ brings the scores back to variance 1, whatever the size.
#
# The cell below measures it with random queries and keys, for sizes from 4 to 1024: the
# spread of the scores, and the largest weight a query gives to any of 16 keys (1/16 ≈ 0.06
# would be perfectly even; 1.0 is all on one key).

# %%
generator = torch.Generator().manual_seed(0)
dims = [4, 16, 64, 256, 1024]
stats = {"std unscaled": [], "std scaled": [], "max weight unscaled": [], "max weight scaled": []}
for d in dims:
    q = torch.randn(1000, 1, d, generator=generator)  # 1000 queries
    k = torch.randn(1000, 16, d, generator=generator)  # 16 keys for each query
    scores = (q @ k.transpose(-2, -1)).squeeze(1)  # (1000, 16)
    for name, s in (("unscaled", scores), ("scaled", scores / math.sqrt(d))):
        stats[f"std {name}"].append(s.std().item())
        stats[f"max weight {name}"].append(s.softmax(dim=-1).max(dim=-1).values.mean().item())

print("   d   score std (unscaled → scaled)   largest weight (unscaled → scaled)")
for i, d in enumerate(dims):
    print(
        f"{d:4d}   {stats['std unscaled'][i]:6.1f} → {stats['std scaled'][i]:.2f}"
        f"                  {stats['max weight unscaled'][i]:.2f} → {stats['max weight scaled'][i]:.2f}"
    )

# %%
saturation_curves(
    dims,
    stats["max weight unscaled"],
    stats["max weight scaled"],
    ylabel="largest softmax weight (mean)",
).set_title("Without √d the softmax saturates")
plt.show()

# %% [markdown]
# Without scaling, the largest weight climbs towards 1 as $d$ grows: attention becomes a
# hard "pick one key". With scaling it stays put. Dividing by $d$ instead of $\sqrt d$
# would overcorrect: the scores would shrink towards 0 and every key would get the same
# weight.

# %% [markdown]
# ## 4. Masks: who may attend to whom (10 min)
#
# Two situations forbid some query–key pairs:
#
# - **Padding.** Sentences in a batch have different lengths, so the short ones are padded
#   with filler tokens to a common length. No real token should take information from
#   padding.
# - **Causality.** A model that predicts the next word must not peek at it: position $i$
#   may attend to positions $0, \dots, i$ only.
#
# A mask is a boolean tensor broadcastable to the scores' shape `(..., seq_q, seq_k)`. In
# this course, as in PyTorch's `F.scaled_dot_product_attention` and in Hugging Face,
# **True means "may attend"**. (`nn.MultiheadAttention` uses the opposite convention for
# both of its boolean masks, `key_padding_mask` and `attn_mask`: there True means
# "blocked". When you meet them, invert explicitly, in a named variable.)
#
# Masking happens on the **scores, before the softmax**, by setting the forbidden scores to
# $-\infty$. Why not to 0? Look at one query's scores:

# %%
scores = torch.tensor([2.0, 1.0, 0.5, -1.0])
allowed = torch.tensor([True, True, False, False])  # the last two keys are padding
print(
    "weights, masked scores set to 0:   ",
    scores.masked_fill(~allowed, 0.0).softmax(dim=-1).numpy().round(3),
)
print(
    "weights, masked scores set to -inf:",
    scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1).numpy().round(3),
)
print(
    "weights, masked after the softmax: ",
    scores.softmax(dim=-1).masked_fill(~allowed, 0.0).numpy().round(3),
)

# %% [markdown]
# A score of 0 is not "nothing": $e^0 = 1$, so the padded keys still get a fair share of the
# weight (and a negative score like −1 even *gains* weight when set to 0). With $-\infty$,
# $e^{-\infty} = 0$ exactly, and the softmax shares the whole unit among the allowed keys.
# Zeroing weights *after* the softmax removes the padding but leaves rows that no longer
# sum to 1.
#
# One consequence: a query that may attend to **no** key at all gets a row of only −∞, and
# a softmax of that is 0/0 = NaN. This can happen legitimately. When a model generates
# text for a batch of prompts, the short prompts are padded on the *left*; with a causal
# mask, a padding position at the start sees only earlier padding, so every key is masked.
# Libraries then give such rows a harmless output, which is ignored anyway: recent
# versions of PyTorch's `F.scaled_dot_product_attention` return zeros there (older ones
# returned NaN). Anywhere else a fully masked row is a bug, and NaN makes it loud.

# %%
row = torch.full((4,), float("-inf"))  # one query's scores, every key masked
print("softmax of a fully masked row:", row.softmax(dim=-1).tolist())
q = torch.randn(1, 2, 4)  # (batch, seq, d_k)
nobody_first = torch.tensor([[False, False], [True, True]])  # query 0 may attend to no key
out = F.scaled_dot_product_attention(q, q, q, attn_mask=nobody_first)
print(f"PyTorch {torch.__version__}, output of that query:", out[0, 0].tolist())

# %% [markdown]
# ## 5. Exercises (25 min)
#
# ### Exercise 2.1: scaled dot-product attention (15 min)
#
# Write `scaled_dot_product_attention(query, key, value, mask=None)` returning the pair
# `(output, weights)`.
#
# - Inputs: `query` `(..., seq_q, d_k)`, `key` `(..., seq_k, d_k)`, `value` `(..., seq_k, d_v)`,
#   where `...` is any number of leading axes (none, batch, batch and heads).
# - `mask`: `None`, or a bool tensor broadcastable to `(..., seq_q, seq_k)`, True = may attend.
# - Outputs: `output` `(..., seq_q, d_v)` and `weights` `(..., seq_q, seq_k)`.
#
# Use `d_k = query.size(-1)`. (A common question: should it be `q.size(-1)` or
# `k.size(-1)`? They are the same number, since queries and keys meet in a dot product.
# What matters is not to use the values' size.) Beyond `@`, all you need is
# `key.transpose(-2, -1)`, `math.sqrt`, `Tensor.masked_fill` and `torch.softmax(..., dim=-1)`.


# %% tags=["exercise"]
def scaled_dot_product_attention(query, key, value, mask=None):
    """Return (output, weights) of scaled dot-product attention; mask True = may attend."""
    ### BEGIN SOLUTION
    d_k = query.size(-1)
    scores = query @ key.transpose(-2, -1) / math.sqrt(d_k)  # (..., seq_q, seq_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ value, weights
    ### END SOLUTION


# %% tags=["check"]
check("2.1", scaled_dot_product_attention)

# %% [markdown]
# PyTorch ships the same computation as one fused function,
# `F.scaled_dot_product_attention`, with the same mask polarity. It returns only the
# output (the fused kernels never store the weights, which is how they save memory). The
# course's reference agrees with it to float32 precision:

# %%
q, k, v = torch.randn(2, 4, 16), torch.randn(2, 6, 16), torch.randn(2, 6, 5)
allowed = torch.rand(2, 4, 6) > 0.3
allowed[..., 0] = True  # every query may see at least one key
ours, _ = reference.scaled_dot_product_attention(q, k, v, allowed)
theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
print(f"largest difference from PyTorch: {(ours - theirs).abs().max().item():.1e}")

# %% [markdown]
# ### Exercise 2.2: a causal mask (5 min)
#
# Write `causal_mask(seq)` returning a `(seq, seq)` bool tensor in which query $i$ may
# attend to key $j$ exactly when $j \le i$. Row $i$ is query $i$; column $j$ is key $j$.
# Draw the mask for `seq = 4` on paper first: which part of the square is True?


# %% tags=["exercise"]
def causal_mask(seq):
    """Return a (seq, seq) bool mask, True where query i may attend to key j (j <= i)."""
    ### BEGIN SOLUTION
    return torch.ones(seq, seq, dtype=torch.bool).tril()
    ### END SOLUTION


# %% tags=["check"]
check("2.2", causal_mask)

# %% [markdown]
# ### Exercise 2.3: a padding mask (5 min)
#
# Write `padding_mask(lengths, seq)`: given each sentence's number of real tokens,
# `lengths` of shape `(batch,)`, return a `(batch, seq)` bool tensor that is True at the
# real tokens and False at the padding after them. Write it without a Python loop: entry
# `(b, p)` is True exactly when position `p` comes before `lengths[b]`, so the task is to
# compare every position with every length at once.
#
# To use it as an attention mask, give it a query axis, `mask[:, None, :]`, of shape
# `(batch, 1, seq_k)`: the same keys are hidden from every query of that sentence.


# %% tags=["exercise"]
def padding_mask(lengths, seq):
    """Return a (batch, seq) bool mask, True at real tokens and False at padding."""
    ### BEGIN SOLUTION
    return torch.arange(seq)[None, :] < lengths[:, None]
    ### END SOLUTION


# %% tags=["check"]
check("2.3", padding_mask)

# %% [markdown]
# **Think: `torch.arange(seq) < lengths` looks like the whole answer. For `lengths` of
# shape `(2,)` and `seq = 6` it raises an error; for `seq = 2` it runs and is wrong. Why,
# and what shapes make the comparison produce `(batch, seq)`?**

# %% [markdown] tags=["solution"]
# **Answer.** Broadcasting lines shapes up from the right, so `(seq,)` is compared with
# `(batch,)` element by element: 6 against 2 does not broadcast, and 2 against 2 compares
# position `b` with `lengths[b]`, giving a `(batch,)` result. Give the positions a row
# axis and the lengths a column axis: `torch.arange(seq)[None, :]` is `(1, seq)`,
# `lengths[:, None]` is `(batch, 1)`, and their comparison broadcasts to `(batch, seq)`,
# entry `(b, p)` being `p < lengths[b]`.

# %% [markdown]
# Both masks at work, on a batch of two sequences of lengths 6 and 4, padded to 6. With
# the padding mask, padded keys (columns 4 and 5 of the second sequence) get weight 0 from
# every query. Combining both masks with `&` gives the mask of a decoder reading a padded
# batch. (The padded *queries* still produce rows; whatever they compute is ignored later.)

# %%
x = torch.randn(2, 6, 16)
pad = reference.padding_mask(torch.tensor([6, 4]), 6)[:, None, :]  # (batch, 1, seq_k)
both = pad & reference.causal_mask(6)  # broadcasts to (batch, seq_q, seq_k)
_, w_pad = reference.scaled_dot_product_attention(x, x, x, pad)
_, w_both = reference.scaled_dot_product_attention(x, x, x, both)

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
attention_heatmap(w_pad[1], ax=axes[0], title="padding mask (2nd sequence, length 4)")
attention_heatmap(w_both[1], ax=axes[1], title="padding & causal mask")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 6. Attention over real words (10 min)
#
# So far the vectors were random. Here are real ones: word vectors trained (in a couple
# of seconds, by `course_utils.wordvectors`) on about 58,000 words of news. We use each
# word's vector directly as its query, key and value, that is $W_Q = W_K = W_V = I$ and
# no biases: a trained transformer would learn better maps, but even this shows attention
# following meaning. One twist: with identical queries and keys, a word's best match is
# usually itself (its score with itself is its squared length, which only a longer vector
# pointing in a similar direction can beat), so we hide the diagonal with a mask (True
# everywhere except $i = j$) and each word must look at the *other* words.

# %%
vectors = news_word_vectors()
words = "police arrested the man after the attack near the river".split()
x = sentence_vectors(words, vectors)  # (seq, 48)
not_self = ~torch.eye(len(words), dtype=torch.bool)
_, weights = reference.scaled_dot_product_attention(x, x, x, mask=not_self)
attention_heatmap(weights, words, words, title="Each word attends to the other words")
plt.show()

# %% [markdown]
# Read a row: it is one word's attention over the sentence. Related content words find
# each other ("man" looks at "arrested", "police" at "arrested" and "near"), and the three
# copies of "the" look at one another, since identical words have identical vectors.
# Nothing here was trained for attention: it comes from word vectors alone. Lesson 06
# trains $W_Q$ and $W_K$ on a task and shows what the trained heads attend to.

# %% [markdown]
# **Think: why is the heatmap not symmetric, although $Q = K$?**

# %% [markdown] tags=["solution"]
# **Answer.** The *scores* are
# symmetric ($x_i \cdot x_j = x_j \cdot x_i$), but the softmax normalises each row
# separately: a word with many strong matches shares its attention among them, while a
# word with a single good match gives it most of its weight.

# %% [markdown]
# ## 7. The cost grows with the square of the length (5 min)
#
# Lesson 01 ended on the advantage of attention over a recurrent network: every pair of
# tokens is scored directly, all pairs at once. Here is the price. The score matrix has
# one entry per query–key pair: `seq × seq`. Doubling the sentence
# quadruples the scores to compute and to store. The cell below times one self-attention
# call (one sentence, one head, $d_k = 64$) for lengths from 256 to 2,048 tokens, in
# a few seconds. It always runs on the CPU, even when a GPU is present: a GPU computes
# such small matrices so fast that its fixed cost per call, not the arithmetic, would
# set the time. Timing on a busy computer needs care, so it runs one warm-up call
# first, keeps the fastest of 20 calls, uses one thread, and counts only the processor
# time of that thread, not the moments when other programs have the processor.
#
# The memory is measured too. During one more call, `TensorMemory` (in
# `course_utils.attention`) watches every tensor PyTorch creates and keeps the largest
# number of bytes they hold at once: the call's peak memory. The dotted line beside it
# is computed: scores and weights, two `(seq, seq)` matrices of 4-byte floats,
# `2 * seq * seq * 4` bytes.

# %%
lengths = [256, 362, 512, 724, 1024, 1448, 2048]  # each √2 times the previous
cost = reference.measure_attention_cost(lengths, d_k=64, device="cpu")
for row in cost:
    print(
        f"seq {row['seq']:5d}: {1000 * row['seconds']:7.2f} ms, peak {row['peak_megabytes']:5.1f} MB"
        f" (scores + weights: {row['megabytes']:5.1f} MB)"
    )
cost_curves(
    lengths,
    [r["seconds"] for r in cost],
    [r["peak_megabytes"] for r in cost],
    computed_megabytes=[r["megabytes"] for r in cost],
)
plt.show()

# %% [markdown]
# On log–log axes a power law $c \cdot seq^k$ is a straight line of slope $k$. The fitted
# slopes in the legends are close to 2: time and memory grow like seq². The measured
# peak is the two matrices plus the small `(seq, 64)` output: the scores are still alive
# while the softmax turns them into the weights. (The measured time wobbles a little,
# most likely because of the processor's caches: a 256 × 256 matrix of floats, 256 KiB,
# fits in them, a 2,048 × 2,048 one, 16 MiB (16.8 MB), mostly does not.) At 2,048 tokens
# one head of one sentence already holds 33.6 MB of scores and weights, and training
# keeps such a weight matrix for every head, layer and sentence of the batch until the
# backward pass. That is why long-context models use fused kernels such as
# FlashAttention, which never store the full matrix (memory grows linearly, the
# arithmetic is still quadratic), or restrict which pairs may attend at all.

# %% [markdown]
# ## Summary
#
# - Every token gets a query, a key and a value from three learned linear maps.
# - Attention is $\operatorname{softmax}(QK^\top/\sqrt{d_k})\,V$: scores for every
#   query–key pair, a softmax over the **keys**, then a weighted average of the values.
# - Dividing by $\sqrt{d_k}$ keeps the softmax from saturating as $d_k$ grows.
# - Masks are boolean, True = may attend, applied to the scores **before** the softmax by
#   filling with $-\infty$; padding masks hide filler tokens, causal masks hide the future.
# - Time and memory grow with the square of the sequence length.
#
# Next, lesson 03 runs several attentions side by side, each with its own small
# $W_Q, W_K, W_V$: multi-head attention.
