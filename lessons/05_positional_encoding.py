# %% [markdown]
# # Lesson 05 · Positional encoding
#
# **Goal:** show that attention alone cannot see word order, then give every token its position with sinusoidal encodings added along the sequence axis.
#
# **Time:** about 60 minutes.
#
# Apart from the causal mask, nothing in lessons 02–04 looks at *where* a token sits.
# This lesson proves that numerically, then fixes it:
#
# 1. attention is blind to order (10 min);
# 2. the sinusoidal table, exercise 5.1 (15 min);
# 3. adding it along the sequence axis, exercise 5.2 (10 min);
# 4. positions break the symmetry (10 min);
# 5. what the table encodes: dot products and distance (10 min);
# 6. learned position embeddings, the alternative (5 min).
#
# Each exercise has a one-line check cell under it: one line back when your code is
# right, one sentence naming the problem when it is not.
#
# **What carries over.** Your table (exercise 5.1) and the function that adds it
# (exercise 5.2) are kept once their checks pass: the Yelp classifier of lesson 06 gives
# its tokens their positions with both, and the decoder of lesson 08 with your table.
# (Lesson 07's BERT learned its own position vectors, the alternative of section 6.) A
# part you skip is replaced by the course's reference; `parts.show()` says which are yours.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

from course_utils import get_device, parts, set_seed
from course_utils import positional as reference  # the course's own solutions, used by demos
from course_utils.attention import MultiHeadAttention
from course_utils.encoder import EncoderBlock
from course_utils.exercises import check
from course_utils.plots import line_chart, positional_heatmap

device = get_device()
set_seed(0)
parts.keep_on_google_drive()  # in Colab: asks to keep your parts in your Drive; elsewhere nothing

# %% [markdown]
# ## 1. Attention is blind to order (10 min)
#
# Shuffle the tokens of a sentence and feed them to self-attention. Each token's query
# still meets the same set of keys, only listed in another order; the softmax and the
# weighted sum do not care about the order of a list. So every token gets exactly the
# output it got before, and the outputs come out shuffled the same way. In symbols, for
# any permutation $P$ of the positions: $\operatorname{Attention}(Px) = P\,\operatorname{Attention}(x)$.
# Self-attention is **permutation-equivariant**. The feed-forward network and LayerNorm
# act on each token alone, so a whole encoder block is too.
#
# A causal mask is the one exception: it ties each query to the keys before it, so a
# shuffle changes what each token may see. That is why decoder-only models can, to a
# degree, work out positions without any encoding. An encoder, which this lesson is
# about, has no such mask.

# %% tags=["nbval-check-output"]
attention = MultiHeadAttention(32, 4).eval()
x = torch.randn(1, 6, 32)  # (batch, seq, d_model)
order = torch.tensor([2, 0, 5, 1, 4, 3])  # a shuffle of the 6 positions
out, _ = attention(x)
out_shuffled, _ = attention(x[:, order])
same = torch.allclose(out_shuffled, out[:, order], atol=1e-6)
print("attention(shuffled tokens) == shuffled attention(tokens):", same)

# %% [markdown]
# The consequence for a classifier that averages its token outputs (lesson 06 does) is
# stark: "dog bites man" and "man bites dog" get the same representation.

# %% tags=["nbval-check-output"]
vocab = {"dog": 0, "bites": 1, "man": 2}
embedding = nn.Embedding(len(vocab), 32)
block = EncoderBlock(32, 4, 64).eval()
sentences = {
    text: torch.tensor([[vocab[w] for w in text.split()]])
    for text in ("dog bites man", "man bites dog")
}
pooled = {text: block(embedding(ids)).mean(dim=1) for text, ids in sentences.items()}
print(
    "same sentence vector for both:",
    torch.allclose(pooled["dog bites man"], pooled["man bites dog"], atol=1e-6),
)

# %% [markdown]
# The fix: before the first block, add to each token a vector that depends on its
# **position**. Token 0 gets $PE_0$, token 1 gets $PE_1$, and so on, whatever the words.
# Then a shuffled sentence is a different input.

# %% [markdown]
# ## 2. The sinusoidal table (15 min)
#
# "Attention Is All You Need" uses a fixed table, nothing learned. For position $pos$ and
# column pair $i$ (columns $2i$ and $2i+1$):
#
# $$PE_{pos,\,2i} = \sin\!\left(\frac{pos}{10000^{2i/d_{model}}}\right), \qquad
#   PE_{pos,\,2i+1} = \cos\!\left(\frac{pos}{10000^{2i/d_{model}}}\right).$$
#
# Each column pair is a clock hand turning at its own speed as the position grows. Pair 0
# turns by one radian per position (a full turn every 6.3 positions); each following
# pair turns more slowly. The last pair, $2i = d_{model} - 2$, needs
# $2\pi \cdot 10000^{(d_{model}-2)/d_{model}}$ positions for one turn: about 47,000 for
# $d_{model} = 64$, approaching $2\pi \cdot 10000 \approx 63{,}000$ as $d_{model}$ grows.
# Read together, the hands give every position a distinct pattern, the way the hands of a
# clock give every minute of a day a distinct reading, and every entry stays between −1
# and 1, whatever the length.
#
# ### Exercise 5.1: the table (10 min)
#
# Write `sinusoidal_positional_encoding(max_len, d_model)` returning a float32 tensor
# `(max_len, d_model)` following the formula: sines in the even columns, cosines in the
# odd ones, and the **same** frequency $1/10000^{2i/d_{model}}$ for the two columns of a
# pair (the exponent uses the even column's index $2i$).
#
# Build all the angles at once, without a Python loop: a column of positions times a row
# of frequencies broadcasts to `(max_len, number of pairs)`. Slicing with a step of 2
# (`table[:, 0::2]`) reaches every other column. The checker also tries an odd `d_model`,
# where the last column is a sine without its cosine: make sure your code handles it.


# %% tags=["exercise"]
def sinusoidal_positional_encoding(max_len, d_model):
    """The (max_len, d_model) sinusoidal table: sin in even columns, cos in odd ones."""
    ### BEGIN SOLUTION
    position = torch.arange(max_len, dtype=torch.float32)[:, None]  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float32)  # (number of pairs,)
    angle = position / 10000 ** (two_i / d_model)  # (max_len, number of pairs)
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return table
    ### END SOLUTION


# %% tags=["check"]
check("5.1", sinusoidal_positional_encoding)

# %% [markdown]
# The table as a picture: one row per position, one column per feature. On the left,
# the fast pairs flip sign every few positions; to the right they slow down until they
# barely move over 100 positions (sine near 0, cosine near 1).

# %%
table = reference.sinusoidal_positional_encoding(100, 64)
positional_heatmap(table, title="Sinusoidal positional encoding, 100 positions × 64 features")
plt.show()

# %% [markdown]
# The same table read column by column: each column is a wave along the positions, and
# the further right the column, the longer its wave. Columns 4 and 5 (pair 2) repeat
# every 11 positions, column 16 (pair 8) every 63, and column 40 (pair 20) only about
# every 2,000, so over these 60 positions it only creeps up to 0.19. Columns 4 and 5 are the
# same wave shifted by a quarter turn: sine and cosine.

# %%
columns = {4: "-", 5: "--", 16: "-", 40: "-"}
ax = line_chart(
    torch.arange(60),
    {f"column {c}": table[:60, c] for c in columns},
    xlabel="position",
    ylabel="value",
    title="Four columns of the table",
    styles={f"column {c}": {"linestyle": style} for c, style in columns.items()},
)
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
plt.show()

# %% [markdown]
# ## 3. Adding the table along the sequence axis (10 min)
#
# The encodings are **added** to the token embeddings (of the same width `d_model`).
# Our tensors are batch-first, `(batch, seq, d_model)`, so the position of a token is its
# index on **axis 1**. Token $t$ of every sentence in the batch gets row $t$ of the table:
# take the first `seq` rows, `(seq, d_model)`, and let broadcasting repeat them over the
# batch.
#
# This is exactly where the material this course grew from went wrong. Its encoding code
# was written for sequence-first tensors, `(seq, batch, d_model)`, indexing positions on
# axis 0, and its model fed it batch-first tensors. So sentence $b$ received $PE_b$ on
# every one of its tokens: positions were added along the **batch** axis. No error, since
# the shapes broadcast, and the model trained, just without ever seeing word order.
#
# ### Exercise 5.2: add along the sequence axis (5 min)
#
# Write `add_positional_encoding(x, table)`: `x` is `(batch, seq, d_model)`, `table` is
# `(max_len, d_model)` with `max_len >= seq`; return `x` plus the encodings, shape
# `(batch, seq, d_model)`, token `t` of every sentence receiving `table[t]`.


# %% tags=["exercise"]
def add_positional_encoding(x, table):
    """x (batch, seq, d_model) plus table[t] at every token t of every sequence."""
    ### BEGIN SOLUTION
    seq = x.size(1)
    return x + table[:seq]  # (seq, d_model) broadcasts over the batch
    ### END SOLUTION


# %% tags=["check"]
check("5.2", add_positional_encoding)

# %% [markdown]
# The original bug, reproduced: add the table along the batch axis and the encodings do
# nothing for order. Every token of a sentence gets the same vector, so shuffling the
# tokens still just shuffles the outputs. Worse, a sentence's result now depends on the
# slot it happens to occupy in the batch.

# %% tags=["nbval-check-output"]
batch = torch.randn(2, 6, 32)  # two sentences of 6 tokens
pe = reference.sinusoidal_positional_encoding(50, 32)
along_batch = batch + pe[: batch.size(0)].unsqueeze(1)  # the bug: PE_b on every token of b
shuffled = batch[:, order] + pe[: batch.size(0)].unsqueeze(1)
out, _ = attention(along_batch)
out_shuffled, _ = attention(shuffled)
print("with the bug, still blind to order:", torch.allclose(out_shuffled, out[:, order], atol=1e-6))

swapped = batch.flip(0) + pe[: batch.size(0)].unsqueeze(1)  # the same two sentences, slots swapped
out_swapped, _ = attention(swapped)
print("with the bug, sentence 0 depends on its slot:", not torch.allclose(out_swapped[1], out[0]))

# %% [markdown]
# ## 4. Positions break the symmetry (10 min)
#
# Now the right way. After adding the encodings along the sequence axis, a shuffled
# sentence is a genuinely different input: the outputs are no longer a shuffle of the
# originals, and "dog bites man" finally differs from "man bites dog".

# %% tags=["nbval-check-output"]
out, _ = attention(reference.add_positional_encoding(x, pe))
out_shuffled, _ = attention(reference.add_positional_encoding(x[:, order], pe))
print("still a mere shuffle:", torch.allclose(out_shuffled, out[:, order], atol=1e-6))

pooled = {
    text: block(reference.add_positional_encoding(embedding(ids), pe)).mean(dim=1)
    for text, ids in sentences.items()
}
gap = (pooled["dog bites man"] - pooled["man bites dog"]).abs().max().item()
print("dog bites man and man bites dog now differ:", gap > 1e-3)

# %% [markdown]
# One practical detail for lesson 06: the sizes of the two vectors being added. Every row
# of the table has length $\sqrt{d_{model}/2}$, since each pair contributes
# $\sin^2 + \cos^2 = 1$. The length of a token embedding depends on how it was
# initialised. The original transformer's code (tensor2tensor) drew embedding entries
# with standard deviation $1/\sqrt{d_{model}}$, a vector length of about 1, so the
# position would have drowned out the word; it therefore multiplied the embeddings by
# $\sqrt{d_{model}}$, bringing them to a length of about $\sqrt{d_{model}}$, comparable
# to the encodings.
# Lesson 06 does the same. The factor belongs with that initialisation: `nn.Embedding`'s
# default entries already have standard deviation 1, and multiplying those by
# $\sqrt{d_{model}}$ would make the word drown out the position instead.
#
# A warning about two similar names: the **positional** encoding tells the model where
# each token is, while the **position-wise** feed-forward network of lesson 04 is just
# the same small network applied at every position separately, blind to which one.

# %% [markdown]
# **Think: why add the encodings instead of concatenating them to the embeddings?**

# %% [markdown] tags=["solution"]
# **Answer.** Concatenating would work too, but it widens every layer. Adding keeps `d_model`, and in
# a space of hundreds of dimensions the model can learn to keep word and position
# information in nearly separate directions, so little is lost by the sum.

# %% [markdown]
# ## 5. What the table encodes: dot products and distance (10 min)
#
# The dot product of two rows only depends on how far apart the positions are. Each pair
# of columns contributes $\sin a \sin b + \cos a \cos b = \cos(a - b)$, so
#
# $$PE_p \cdot PE_q = \sum_i \cos\big(\omega_i\,(p - q)\big), \qquad \omega_i = 1/10000^{2i/d_{model}}.$$
#
# Plot $PE_p \cdot PE_{p+k}$ against the distance $k$, starting from three different
# positions $p$ (drawn as a line, circles and crosses): the three fall exactly on top of
# each other. The dot product is
# largest at distance 0 ($d_{model}/2 = 32$) and falls, with ripples, as positions move
# apart, so nearby positions look alike to attention's dot products.

# %%
table = reference.sinusoidal_positional_encoding(200, 64)
distances = torch.arange(0, 100)
curves = {f"from position {p}": table[p + distances] @ table[p] for p in (0, 40, 90)}
line_chart(
    distances,
    curves,
    xlabel="distance k between positions",
    ylabel="PE[p] · PE[p + k]",
    title="Dot product between positions depends only on their distance",
    styles={
        "from position 0": {"linewidth": 2.5, "alpha": 0.5},
        "from position 40": {"marker": "o", "markersize": 6, "fillstyle": "none", "ls": ""},
        "from position 90": {"marker": "x", "markersize": 4, "ls": ""},
    },
)
plt.show()
gaps = [(curve - curves["from position 0"]).abs().max().item() for curve in curves.values()]
print(f"largest gap between the curves: {max(gaps):.1e}")

# %% [markdown]
# There is more structure: moving every position by the same offset $k$ turns each clock
# hand by the same angle $\omega_i k$, which is a fixed rotation of each column pair. So
# $PE_{p+k} = PE_p R_k$ for one matrix $R_k$ that does not depend on $p$: a linear map,
# which, the original paper hoped, lets a head learn to look "3 tokens back" wherever it
# is. (Rotary position embeddings, used by many recent models, build exactly this
# rotation into the queries and keys.)

# %% tags=["nbval-check-output"]
k, d_model = 3, 64
omega = 1 / 10000 ** (torch.arange(0, d_model, 2) / d_model)  # one speed per pair
cos, sin = torch.cos(omega * k).tolist(), torch.sin(omega * k).tolist()
rotations = [torch.tensor([[c, -s], [s, c]]) for c, s in zip(cos, sin, strict=True)]
rotate_by_k = torch.block_diag(*rotations)  # (d_model, d_model), acts on (sin, cos) pairs
print(
    "PE[p + 3] == PE[p] @ R_3 for every p:",
    torch.allclose(table[:-k] @ rotate_by_k, table[k:], atol=1e-4),
)

# %% [markdown]
# ## 6. Learned position embeddings (5 min)
#
# The alternative is to learn the table: an `nn.Embedding(max_len, d_model)` whose row $t$
# is added to token $t$, trained with the rest of the model. BERT and GPT-2 do this. The
# original paper tried both and found them about equally good.
#
# | | sinusoidal | learned |
# |---|---|---|
# | parameters | none | `max_len × d_model` |
# | positions beyond training | defined (formula), though models rarely use them well | impossible past `max_len` |
# | shape of the code | a fixed table, stored as a buffer | an embedding lookup |
# | needs data | no | each position must be seen in training |
#
# `reference.LearnedPositionalEmbedding` is the learned version, used exactly like the
# table (it adds along the sequence axis too).

# %%
learned = reference.LearnedPositionalEmbedding(max_len=512, d_model=32)
print(f"learned positions: {sum(p.numel() for p in learned.parameters()):,} parameters")
out, _ = attention(learned(x))
out_shuffled, _ = attention(learned(x[:, order]))
print("learned positions also break the symmetry:", not torch.allclose(out_shuffled, out[:, order]))
try:
    learned(torch.randn(1, 600, 32))
except ValueError as error:
    print("600 tokens:", error)

# %% [markdown]
# ## Summary
#
# - Self-attention without a causal mask (and so an encoder block) is
#   permutation-equivariant: without positions, word order is invisible, and
#   mean-pooled sentences are bags of words.
# - Sinusoidal encodings: $\sin$ in even columns, $\cos$ in odd ones, each pair turning at
#   speed $1/10000^{2i/d_{model}}$; entries stay in [−1, 1] for any length.
# - Add them along the **sequence** axis: for batch-first `x`, `x + table[:x.size(1)]`.
#   Adding along the batch axis (the original material's bug) leaves the model blind to
#   order and makes results depend on batch slots.
# - The dot product of two encodings depends only on their distance, and a shift by $k$
#   is a fixed rotation, which the original paper hoped attention would learn to use.
# - Learned position embeddings are the common alternative (BERT, GPT-2), limited to
#   `max_len` positions.
#
# Next, lesson 06 puts everything together: embeddings, positions, encoder blocks and a
# classifier head, trained on real Yelp reviews. This table shows which of your parts it
# will use:

# %%
parts.show()
